// Fused CPU kernels for neuro: the multi-step LIF (forward and backward over time) and an
// event-driven linear layer for spike (mostly zero) inputs.
//
// Built on first use by neuro/kernels/_ext.py with torch.utils.cpp_extension and registered as
// torch.ops.neuro_ops.*. Compiled with -ffp-contract=off so every multiply and add rounds exactly
// as the equivalent sequence of torch element-wise ops does: the fused LIF reproduces the step
// loop's spikes bit for bit.
//
// Layout: every LIF tensor is [T, M] contiguous float32, M = batch x neurons flattened; per-neuron
// parameters arrive already broadcast to [M].
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <vector>

namespace {

constexpr int64_t kGrain = 2048;
// Neurons per tile of the LIF loops, which run time-major inside a tile: each step reads and
// writes kRowTile contiguous floats of every [T, M] array (rows of up to 16 pages, which the
// hardware prefetcher follows; 4 KiB tiles restarted it at every page), while the tile's state
// and parameters (a few arrays of 64 KiB at most) stay in L2. At T = 500, M = 32 x 768 on one
// Zen 3 core (quiet machine, medians of 9 calls in 3 alternating rounds against 1024-neuron
// tiles): forward 32.9 -> 27.0 ms with the non-temporal h stores below, backward 23.3 -> 18.8 ms;
// at T = 100, M = 128 x 1024: 30.9 -> 29.7 and 25.2 -> 22.5 ms. The results are the same bits.
constexpr int64_t kRowTile = 16384;
// The forward writes h with non-temporal stores from this many [T, M] elements (8 MiB, a quarter
// of the L3 of the Zen 3 measured); a smaller membrane may still be in cache when it is read.
constexpr int64_t kStreamFloats = int64_t(1) << 21;

void check_lif(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be a CPU tensor");
  TORCH_CHECK(t.scalar_type() == at::kFloat, name, " must be float32");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

// Surrogate derivative g'(x), x = h - thr, for the built-in surrogates (neuro/surrogate.py).
// kind: 0 = values given in a tensor (custom surrogate), 1 = ATan, 2 = FastSigmoid,
// 3 = Sigmoid, 4 = Triangle / EGRU pseudo-derivative (p0 * max(0, 1 - p1 |x|)), 5 = none (0).
template <int KIND>
inline float surrogate_grad(float x, float p0, float p1) {
  if constexpr (KIND == 1) {  // p0 = alpha / 2, p1 = pi / 2 * alpha
    const float u = p1 * x;
    return p0 / (1.0f + u * u);
  } else if constexpr (KIND == 2) {  // p0 = slope
    const float u = p0 * std::fabs(x) + 1.0f;
    return 1.0f / (u * u);
  } else if constexpr (KIND == 3) {  // p0 = alpha
    const float sg = 1.0f / (1.0f + std::exp(-p0 * x));
    return p0 * sg * (1.0f - sg);
  } else if constexpr (KIND == 4) {
    return p0 * std::max(0.0f, 1.0f - p1 * std::fabs(x));
  } else {
    return 0.0f;
  }
}

// Forward.  For each element j and step t:
//   decay_input: h = v + (x - v) * alpha          (alpha = 1 - beta)
//   otherwise:   h = beta * v + x
//   s = (h - thr >= 0)
//   v = subtract ? h - s * thr : h * (1 - s)
// One time step for n elements; separate function so that the restrict-qualified pointers let
// the compiler vectorise (GCC does not vectorise the same loop nested in the time loop).
template <bool DI, bool SUB>
static inline void lif_forward_scalar(int64_t i, int64_t n, float* __restrict__ v,
                                      const float* __restrict__ b, const float* __restrict__ a,
                                      const float* __restrict__ th, const float* __restrict__ xt,
                                      float* __restrict__ st, float* __restrict__ ht) {
  for (; i < n; ++i) {
    const float vi = v[i];
    const float h = DI ? vi + (xt[i] - vi) * a[i] : b[i] * vi + xt[i];
    const float s = (h - th[i] >= 0.0f) ? 1.0f : 0.0f;
    ht[i] = h;
    st[i] = s;
    v[i] = SUB ? h - s * th[i] : h * (1.0f - s);
  }
}

// The same step with AVX2; with `stream`, h is written with non-temporal stores: a large [T, M]
// membrane is read back only by the backward pass, after every other layer has run, so caching
// it on the way out only evicts the spikes the next layer is about to read (and costs a read for
// ownership). Same operations in the same order as the scalar loop (no FMA), so the same bits.
template <bool DI, bool SUB>
static inline void lif_forward_row(int64_t n, bool stream, float* __restrict__ v,
                                   const float* __restrict__ b, const float* __restrict__ a,
                                   const float* __restrict__ th, const float* __restrict__ xt,
                                   float* __restrict__ st, float* __restrict__ ht) {
  int64_t i = 0;
#if defined(__AVX2__)
  const int64_t peel = static_cast<int64_t>(((32 - (reinterpret_cast<uintptr_t>(ht) & 31)) & 31) / 4);
  if ((reinterpret_cast<uintptr_t>(ht) & 3) == 0 && peel < n) {
    lif_forward_scalar<DI, SUB>(0, peel, v, b, a, th, xt, st, ht);
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (i = peel; i + 8 <= n; i += 8) {
      const __m256 vi = _mm256_loadu_ps(v + i), ti = _mm256_loadu_ps(th + i);
      const __m256 xi = _mm256_loadu_ps(xt + i);
      const __m256 h = DI ? _mm256_add_ps(vi, _mm256_mul_ps(_mm256_sub_ps(xi, vi), _mm256_loadu_ps(a + i)))
                          : _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(b + i), vi), xi);
      const __m256 s = _mm256_and_ps(_mm256_cmp_ps(_mm256_sub_ps(h, ti), zero, _CMP_GE_OQ), one);
      if (stream) {
        _mm256_stream_ps(ht + i, h);
      } else {
        _mm256_store_ps(ht + i, h);
      }
      _mm256_storeu_ps(st + i, s);
      _mm256_storeu_ps(v + i, SUB ? _mm256_sub_ps(h, _mm256_mul_ps(s, ti))
                                  : _mm256_mul_ps(h, _mm256_sub_ps(one, s)));
    }
  }
#endif
  lif_forward_scalar<DI, SUB>(i, n, v, b, a, th, xt, st, ht);
}

template <bool DI, bool SUB>
void lif_forward_impl(int64_t T, int64_t M, const float* X, const float* V0, const float* B,
                      const float* A, const float* TH, float* S, float* H, float* VL) {
  const bool stream = T * M >= kStreamFloats;
  at::parallel_for(0, M, kGrain, [&](int64_t lo_, int64_t hi_) {
    for (int64_t lo = lo_; lo < hi_; lo += kRowTile) {
      const int64_t hi = std::min(hi_, lo + kRowTile), n = hi - lo;
      float* v = VL + lo;  // the running membrane lives in the output v_last
      std::copy(V0 + lo, V0 + hi, v);
      for (int64_t t = 0; t < T; ++t) {
        lif_forward_row<DI, SUB>(n, stream, v, B + lo, A + lo, TH + lo, X + t * M + lo,
                                 S + t * M + lo, H + t * M + lo);
      }
    }
#if defined(__AVX2__)
    _mm_sfence();  // this thread's non-temporal stores are visible before h is handed out
#endif
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lif_forward(
    const at::Tensor& x, const at::Tensor& v0, const at::Tensor& beta, const at::Tensor& alpha,
    const at::Tensor& thr, bool decay_input, bool subtract) {
  check_lif(x, "x");
  check_lif(v0, "v0");
  check_lif(beta, "beta");
  check_lif(alpha, "alpha");
  check_lif(thr, "thr");
  TORCH_CHECK(x.dim() == 2, "x must be [T, M]");
  const int64_t T = x.size(0), M = x.size(1);
  TORCH_CHECK(v0.numel() == M && beta.numel() == M && alpha.numel() == M && thr.numel() == M,
              "state and parameters must have M elements");
  auto spikes = at::empty({T, M}, x.options());
  auto hseq = at::empty({T, M}, x.options());
  auto vlast = at::empty({M}, x.options());
  auto args = std::make_tuple(T, M, x.data_ptr<float>(), v0.data_ptr<float>(),
                              beta.data_ptr<float>(), alpha.data_ptr<float>(),
                              thr.data_ptr<float>(), spikes.data_ptr<float>(),
                              hseq.data_ptr<float>(), vlast.data_ptr<float>());
  if (decay_input) {
    subtract ? std::apply(lif_forward_impl<true, true>, args)
             : std::apply(lif_forward_impl<true, false>, args);
  } else {
    subtract ? std::apply(lif_forward_impl<false, true>, args)
             : std::apply(lif_forward_impl<false, false>, args);
  }
  return {spikes, hseq, vlast};
}

struct LifBwdArgs {
  int64_t T, M;
  const float *GS, *GH, *GVL, *H, *SG, *X, *V0, *B, *A, *TH;
  float *GX, *GV0, *GB, *GT;
  float p0, p1;
};

// One backward time step for n elements (see lif_backward below for the arrays).
template <bool DI, bool SUB, bool DET, int KIND, bool HAS_GH, bool NB, bool NT>
static inline void lif_backward_row(
    int64_t n, float p0, float p1, float* __restrict__ gv, float* __restrict__ gb,
    float* __restrict__ gt, const float* __restrict__ th, const float* __restrict__ b,
    const float* __restrict__ a, const float* __restrict__ ht, const float* __restrict__ hp,
    const float* __restrict__ v0, const float* __restrict__ gst, const float* __restrict__ sgt,
    const float* __restrict__ ght, const float* __restrict__ xt, float* __restrict__ gxt) {
  for (int64_t i = 0; i < n; ++i) {
    const float thi = th[i];
    const float hv = ht[i];
    const float s = (hv - thi >= 0.0f) ? 1.0f : 0.0f;
    const float d = KIND == 0 ? sgt[i] : surrogate_grad<KIND>(hv - thi, p0, p1);
    float dvdh, dvdthr;
    if (SUB) {
      dvdh = DET ? 1.0f : 1.0f - thi * d;
      dvdthr = DET ? -s : thi * d - s;
    } else {
      dvdh = DET ? 1.0f - s : (1.0f - s) - hv * d;
      dvdthr = DET ? 0.0f : hv * d;
    }
    float gh = gst[i] * d + gv[i] * dvdh;
    if (HAS_GH) gh += ght[i];
    if (NT) gt[i] += gv[i] * dvdthr - gst[i] * d;
    float vprev = 0.0f;
    if (NB) {
      if (hp) {
        const float sp = (hp[i] - thi >= 0.0f) ? 1.0f : 0.0f;
        vprev = SUB ? hp[i] - sp * thi : hp[i] * (1.0f - sp);
      } else {
        vprev = v0[i];
      }
    }
    if (DI) {
      gxt[i] = gh * a[i];
      gv[i] = gh - gh * a[i];
      if (NB) gb[i] += gh * (vprev - xt[i]);
    } else {
      gxt[i] = gh;
      gv[i] = gh * b[i];
      if (NB) gb[i] += gh * vprev;
    }
  }
}

template <bool DI, bool SUB, bool DET, int KIND, bool HAS_GH, bool NB, bool NT>
void lif_backward_impl(const LifBwdArgs& r) {
  const int64_t T = r.T, M = r.M;
  at::parallel_for(0, M, kGrain, [&](int64_t lo_, int64_t hi_) {
    // row tiles as in the forward (kRowTile): whole rows stream, h[t - 1] is reused from L2
    std::vector<float> buf(3 * std::min(kRowTile, hi_ - lo_));
    float* gv = buf.data();
    float* gb = gv + buf.size() / 3;
    float* gt = gb + buf.size() / 3;
    for (int64_t lo = lo_; lo < hi_; lo += kRowTile) {
      const int64_t hi = std::min(hi_, lo + kRowTile), n = hi - lo;
      std::copy(r.GVL + lo, r.GVL + hi, gv);
      std::fill(gb, gb + n, 0.0f);
      std::fill(gt, gt + n, 0.0f);
      for (int64_t t = T - 1; t >= 0; --t) {
        const int64_t off = t * M + lo;
        lif_backward_row<DI, SUB, DET, KIND, HAS_GH, NB, NT>(
            n, r.p0, r.p1, gv, gb, gt, r.TH + lo, r.B + lo, r.A + lo, r.H + off,
            t > 0 ? r.H + off - M : nullptr, r.V0 + lo, r.GS + off,
            KIND == 0 ? r.SG + off : nullptr, HAS_GH ? r.GH + off : nullptr,
            (NB && DI) ? r.X + off : nullptr, r.GX + off);
      }
      std::copy(gv, gv + n, r.GV0 + lo);
      std::copy(gb, gb + n, r.GB + lo);
      std::copy(gt, gt + n, r.GT + lo);
    }
  });
}

template <bool DI, bool SUB, bool DET, int KIND>
void dispatch_flags(const LifBwdArgs& r, bool has_gh, bool nb, bool nt) {
  if (!has_gh && !nb && !nt) return lif_backward_impl<DI, SUB, DET, KIND, false, false, false>(r);
  if (has_gh && !nb && !nt) return lif_backward_impl<DI, SUB, DET, KIND, true, false, false>(r);
  // learnable parameters: one general instantiation is enough
  if (has_gh) return lif_backward_impl<DI, SUB, DET, KIND, true, true, true>(r);
  return lif_backward_impl<DI, SUB, DET, KIND, false, true, true>(r);
}

template <bool DI, bool SUB, bool DET>
void dispatch_kind(const LifBwdArgs& r, int64_t kind, bool has_gh, bool nb, bool nt) {
  switch (kind) {
    case 0: return dispatch_flags<DI, SUB, DET, 0>(r, has_gh, nb, nt);
    case 1: return dispatch_flags<DI, SUB, DET, 1>(r, has_gh, nb, nt);
    case 2: return dispatch_flags<DI, SUB, DET, 2>(r, has_gh, nb, nt);
    case 3: return dispatch_flags<DI, SUB, DET, 3>(r, has_gh, nb, nt);
    case 4: return dispatch_flags<DI, SUB, DET, 4>(r, has_gh, nb, nt);
    default: return dispatch_flags<DI, SUB, DET, 5>(r, has_gh, nb, nt);
  }
}

// Backward over time.  gs: dL/ds [T,M]; gh: dL/dh [T,M] or empty (h is returned for membrane
// recording and for non-spiking readouts); gvl: dL/dv_last [M]; h: saved membrane before reset;
// sg: surrogate derivative at h - thr [T,M] when kind == 0 (else empty); x: the input (only read
// when grad_beta is needed and decay_input is on).  Returns (grad_x [T,M], grad_v0 [M],
// grad_beta [M], grad_thr [M]); the last two are summed over time only (the caller reduces
// over batch).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> lif_backward(
    const at::Tensor& gs, const at::Tensor& gh_ext, const at::Tensor& gvl, const at::Tensor& h,
    const at::Tensor& sg, const at::Tensor& x, const at::Tensor& v0, const at::Tensor& beta,
    const at::Tensor& alpha, const at::Tensor& thr, bool decay_input, bool subtract,
    bool detach_reset, bool need_beta, bool need_thr, int64_t kind, double p0, double p1) {
  check_lif(gs, "grad_spikes");
  check_lif(gvl, "grad_v");
  check_lif(h, "h");
  check_lif(v0, "v0");
  const int64_t T = h.size(0), M = h.size(1);
  if (need_beta && decay_input) check_lif(x, "x");
  if (kind == 0) check_lif(sg, "sg");
  const bool has_gh = gh_ext.numel() > 0;
  if (has_gh) check_lif(gh_ext, "grad_h");
  auto gx = at::empty({T, M}, h.options());
  auto gv0 = at::empty({M}, h.options());
  auto gbeta = at::empty({M}, h.options());
  auto gthr = at::empty({M}, h.options());
  LifBwdArgs r{T, M,
               gs.data_ptr<float>(), has_gh ? gh_ext.data_ptr<float>() : nullptr,
               gvl.data_ptr<float>(), h.data_ptr<float>(),
               kind == 0 ? sg.data_ptr<float>() : nullptr,
               (need_beta && decay_input) ? x.data_ptr<float>() : nullptr,
               v0.data_ptr<float>(), beta.data_ptr<float>(), alpha.data_ptr<float>(),
               thr.data_ptr<float>(), gx.data_ptr<float>(), gv0.data_ptr<float>(),
               gbeta.data_ptr<float>(), gthr.data_ptr<float>(),
               static_cast<float>(p0), static_cast<float>(p1)};
  const bool nb = need_beta, nt = need_thr;
  if (decay_input) {
    if (subtract) {
      detach_reset ? dispatch_kind<true, true, true>(r, kind, has_gh, nb, nt)
                   : dispatch_kind<true, true, false>(r, kind, has_gh, nb, nt);
    } else {
      detach_reset ? dispatch_kind<true, false, true>(r, kind, has_gh, nb, nt)
                   : dispatch_kind<true, false, false>(r, kind, has_gh, nb, nt);
    }
  } else {
    if (subtract) {
      detach_reset ? dispatch_kind<false, true, true>(r, kind, has_gh, nb, nt)
                   : dispatch_kind<false, true, false>(r, kind, has_gh, nb, nt);
    } else {
      detach_reset ? dispatch_kind<false, false, true>(r, kind, has_gh, nb, nt)
                   : dispatch_kind<false, false, false>(r, kind, has_gh, nb, nt);
    }
  }
  return {gx, gv0, gbeta, gthr};
}

// Event-driven linear layer, forward: gathers weight rows at the event indices and sums them.
// The weights W [N, K] are first packed (transposed) into column slabs of kBlock output columns,
// each slab [K][kBlock] contiguous (zero-padded at the right edge): a slab fits in L2, an event
// reads 256 contiguous bytes of it, and the kBlock sums of one output row stay in vector registers
// over the row's events (stored once, instead of a load and a store of the output per event).
// Each output element is still the sum of the same terms in the same order (bias or 0 first, then
// the events in ascending index), so the results equal the plain loops' and do not depend on the
// blocking or on the thread count.
constexpr int64_t kBlock = 64;

// W [N, K] (row n: the weights into output n) -> slabs [ceil(N / kBlock)][K][kBlock] with
// slab[b][k][j] = W[b * kBlock + j, k], zero-padded.  Reading W directly saves the transposed
// copy W^T that the caller would otherwise make.
static void pack_slabs(const float* W, int64_t N, int64_t K, float* out) {
  const int64_t nb = (N + kBlock - 1) / kBlock;
  at::parallel_for(0, nb, 1, [&](int64_t blo, int64_t bhi) {
    for (int64_t b = blo; b < bhi; ++b) {
      const int64_t j0 = b * kBlock, w = std::min(kBlock, N - j0);
      float* slab = out + b * K * kBlock;
      for (int64_t j = 0; j < w; ++j) {
        const float* wr = W + (j0 + j) * K;
        for (int64_t k = 0; k < K; ++k) slab[k * kBlock + j] = wr[k];
      }
      if (w < kBlock) {
        for (int64_t k = 0; k < K; ++k) {
          for (int64_t j = w; j < kBlock; ++j) slab[k * kBlock + j] = 0.0f;
        }
      }
    }
  });
}

// event_block for the first w <= kBlock columns only (edges, and builds without AVX2): the sums
// in a local array, same terms in the same order.
static inline void event_block_n(int64_t w, const float* init, const int32_t* __restrict__ idx,
                                 const float* __restrict__ val, int64_t q0, int64_t q1,
                                 const float* __restrict__ src, int64_t stride, float* out) {
  alignas(32) float acc[kBlock];
  for (int64_t j = 0; j < w; ++j) acc[j] = init[j];
  for (int64_t q = q0; q < q1; ++q) {
    const float* __restrict__ s = src + static_cast<int64_t>(idx[q]) * stride;
    if (val) {
      const float xv = val[q];
      for (int64_t j = 0; j < w; ++j) acc[j] += xv * s[j];
    } else {
      for (int64_t j = 0; j < w; ++j) acc[j] += s[j];
    }
  }
  for (int64_t j = 0; j < w; ++j) out[j] = acc[j];
}

// out[0:kBlock] = init[0:kBlock] + sum over events q in [q0, q1) of val[q] (1 when val is null)
// * src[idx[q] * stride + 0:kBlock], in order; the kBlock sums live in vector registers (AVX2:
// eight explicit accumulators; a multiply then an add, as the scalar loop rounds them).  init is
// read before out is written, so they may be the same array.
static inline void event_block(const float* init, const int32_t* __restrict__ idx,
                               const float* __restrict__ val, int64_t q0, int64_t q1,
                               const float* __restrict__ src, int64_t stride, float* out) {
#if defined(__AVX2__)
  static_assert(kBlock == 64, "eight AVX2 accumulators");
  __m256 a0 = _mm256_loadu_ps(init), a1 = _mm256_loadu_ps(init + 8);
  __m256 a2 = _mm256_loadu_ps(init + 16), a3 = _mm256_loadu_ps(init + 24);
  __m256 a4 = _mm256_loadu_ps(init + 32), a5 = _mm256_loadu_ps(init + 40);
  __m256 a6 = _mm256_loadu_ps(init + 48), a7 = _mm256_loadu_ps(init + 56);
  if (val) {
    for (int64_t q = q0; q < q1; ++q) {
      const float* s = src + static_cast<int64_t>(idx[q]) * stride;
      const __m256 xv = _mm256_set1_ps(val[q]);
      a0 = _mm256_add_ps(a0, _mm256_mul_ps(xv, _mm256_loadu_ps(s)));
      a1 = _mm256_add_ps(a1, _mm256_mul_ps(xv, _mm256_loadu_ps(s + 8)));
      a2 = _mm256_add_ps(a2, _mm256_mul_ps(xv, _mm256_loadu_ps(s + 16)));
      a3 = _mm256_add_ps(a3, _mm256_mul_ps(xv, _mm256_loadu_ps(s + 24)));
      a4 = _mm256_add_ps(a4, _mm256_mul_ps(xv, _mm256_loadu_ps(s + 32)));
      a5 = _mm256_add_ps(a5, _mm256_mul_ps(xv, _mm256_loadu_ps(s + 40)));
      a6 = _mm256_add_ps(a6, _mm256_mul_ps(xv, _mm256_loadu_ps(s + 48)));
      a7 = _mm256_add_ps(a7, _mm256_mul_ps(xv, _mm256_loadu_ps(s + 56)));
    }
  } else {
    for (int64_t q = q0; q < q1; ++q) {
      const float* s = src + static_cast<int64_t>(idx[q]) * stride;
      a0 = _mm256_add_ps(a0, _mm256_loadu_ps(s));
      a1 = _mm256_add_ps(a1, _mm256_loadu_ps(s + 8));
      a2 = _mm256_add_ps(a2, _mm256_loadu_ps(s + 16));
      a3 = _mm256_add_ps(a3, _mm256_loadu_ps(s + 24));
      a4 = _mm256_add_ps(a4, _mm256_loadu_ps(s + 32));
      a5 = _mm256_add_ps(a5, _mm256_loadu_ps(s + 40));
      a6 = _mm256_add_ps(a6, _mm256_loadu_ps(s + 48));
      a7 = _mm256_add_ps(a7, _mm256_loadu_ps(s + 56));
    }
  }
  _mm256_storeu_ps(out, a0);
  _mm256_storeu_ps(out + 8, a1);
  _mm256_storeu_ps(out + 16, a2);
  _mm256_storeu_ps(out + 24, a3);
  _mm256_storeu_ps(out + 32, a4);
  _mm256_storeu_ps(out + 40, a5);
  _mm256_storeu_ps(out + 48, a6);
  _mm256_storeu_ps(out + 56, a7);
#else
  event_block_n(kBlock, init, idx, val, q0, q1, src, stride, out);
#endif
}

// out[r, :] = init + event sum of row r (CSR RP/idx/val over the packed source of `rows` rows),
// for r in [lo, hi): slabs outer (one slab stays in cache), rows inner.  init: [N] or null (0).
static void event_rows_blocked(int64_t lo, int64_t hi, int64_t N, const float* init,
                               const int64_t* RP, const int32_t* idx, const float* val,
                               const float* packed, int64_t rows, float* out) {
  alignas(32) float init_block[kBlock];
  alignas(32) float tail[kBlock];
  for (int64_t j0 = 0, b = 0; j0 < N; j0 += kBlock, ++b) {
    const int64_t w = std::min(kBlock, N - j0);
    for (int64_t j = 0; j < kBlock; ++j) init_block[j] = (init && j < w) ? init[j0 + j] : 0.0f;
    const float* slab = packed + b * rows * kBlock;
    for (int64_t r = lo; r < hi; ++r) {
      float* o = out + r * N + j0;
      if (w == kBlock) {
        event_block(init_block, idx, val, RP[r], RP[r + 1], slab, kBlock, o);
      } else {
        event_block(init_block, idx, val, RP[r], RP[r + 1], slab, kBlock, tail);
        std::copy(tail, tail + w, o);
      }
    }
  }
}

// Number of non-zeros of xr[0:K] (NaN counts as non-zero, as in xr[k] != 0).
static inline int64_t count_nonzero(const float* __restrict__ xr, int64_t K) {
  int64_t c = 0, k = 0;
#if defined(__AVX2__)
  const __m256 zero = _mm256_setzero_ps();
  for (; k + 8 <= K; k += 8) {
    const __m256 ne = _mm256_cmp_ps(_mm256_loadu_ps(xr + k), zero, _CMP_NEQ_UQ);
    c += __builtin_popcount(static_cast<unsigned>(_mm256_movemask_ps(ne)));
  }
#endif
  for (; k < K; ++k) c += (xr[k] != 0.0f);
  return c;
}

// Writes the column index and value of each non-zero of xr[0:K] (ascending) at C[p], V[p], ...;
// returns the new p; clears `ones` when a value differs from 1.
static inline int64_t gather_nonzero(const float* __restrict__ xr, int64_t K, int32_t* C,
                                     float* V, int64_t p, bool& ones) {
  int64_t k = 0;
#if defined(__AVX2__)
  const __m256 zero = _mm256_setzero_ps();
  for (; k + 8 <= K; k += 8) {
    unsigned m = static_cast<unsigned>(
        _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(xr + k), zero, _CMP_NEQ_UQ)));
    while (m) {
      const int64_t kk = k + __builtin_ctz(m);
      const float xv = xr[kk];
      C[p] = static_cast<int32_t>(kk);
      V[p] = xv;
      ones = ones && (xv == 1.0f);
      ++p;
      m &= m - 1;
    }
  }
#endif
  for (; k < K; ++k) {
    const float xv = xr[k];
    if (xv != 0.0f) {
      C[p] = static_cast<int32_t>(k);
      V[p] = xv;
      ones = ones && (xv == 1.0f);
      ++p;
    }
  }
  return p;
}

// Event-driven linear layer, forward: y = x @ W^T (+ bias), x [R,K] mostly zero, W [N,K].
// Builds the CSR form of x (row_ptr [R+1], col [nnz], val [nnz] or empty when every non-zero is
// exactly 1) and accumulates one weight column of W per non-zero input.  When more than
// max_density of x is non-zero it stops after counting and returns an empty y: the caller then
// runs a dense GEMM.
// The weight [N, K] in the slab layout of event_rows_blocked: for each block of kBlock output
// columns, K rows of kBlock floats (zero-padded), i.e. W^T cut into column slabs.  A flat float32
// tensor of ceil(N / kBlock) * K * kBlock entries; spike_linear_forward packs it itself when it is
// not given one (spike_linear.py caches it while the weight does not change, for inference).
at::Tensor spike_linear_pack(const at::Tensor& weight) {
  check_lif(weight, "weight");
  TORCH_CHECK(weight.dim() == 2, "spike_linear_pack: weight [N, K] expected");
  const int64_t N = weight.size(0), K = weight.size(1);
  auto out = at::empty({(N + kBlock - 1) / kBlock * K * kBlock}, weight.options());
  pack_slabs(weight.data_ptr<float>(), N, K, out.data_ptr<float>());
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> spike_linear_forward(
    const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
    double max_density, const c10::optional<at::Tensor>& packed_weight) {
  check_lif(x, "x");
  check_lif(weight, "weight");
  TORCH_CHECK(x.dim() == 2 && weight.dim() == 2 && x.size(1) == weight.size(1),
              "spike_linear_forward: x [R, K] and weight [N, K] expected");
  const int64_t R = x.size(0), K = x.size(1), N = weight.size(0);
  const float* X = x.data_ptr<float>();
  const float* W = weight.data_ptr<float>();
  auto row_ptr = at::empty({R + 1}, x.options().dtype(at::kLong));
  int64_t* RP = row_ptr.data_ptr<int64_t>();
  RP[0] = 0;
  at::parallel_for(0, R, 64, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) RP[r + 1] = count_nonzero(X + r * K, K);
  });
  for (int64_t r = 0; r < R; ++r) RP[r + 1] += RP[r];
  const int64_t nnz = RP[R];
  if (static_cast<double>(nnz) > max_density * static_cast<double>(R * K)) {
    auto none = at::empty({0}, x.options());
    return {none, row_ptr, at::empty({0}, x.options().dtype(at::kInt)), none};
  }
  auto col = at::empty({nnz}, x.options().dtype(at::kInt));
  auto val = at::empty({nnz}, x.options());
  int32_t* C = col.data_ptr<int32_t>();
  float* V = val.data_ptr<float>();
  std::atomic<bool> binary{true};
  at::Tensor y = at::empty({R, N}, x.options());
  float* Y = y.data_ptr<float>();
  const float* Bp = (bias.has_value() && bias->defined()) ? bias->data_ptr<float>() : nullptr;
  std::vector<float> own;
  const float* packed = nullptr;
  if (packed_weight.has_value() && packed_weight->defined()) {
    check_lif(*packed_weight, "packed_weight");
    TORCH_CHECK(packed_weight->numel() == (N + kBlock - 1) / kBlock * K * kBlock,
                "spike_linear_forward: packed_weight has ", packed_weight->numel(),
                " entries, expected ", (N + kBlock - 1) / kBlock * K * kBlock,
                " for a weight [", N, ", ", K, "]");
    packed = packed_weight->data_ptr<float>();
  } else {
    own.resize(static_cast<size_t>((N + kBlock - 1) / kBlock * K * kBlock));
    pack_slabs(W, N, K, own.data());
    packed = own.data();
  }
  at::parallel_for(0, R, 16, [&](int64_t lo, int64_t hi) {
    bool ones = true;
    for (int64_t r = lo; r < hi; ++r) gather_nonzero(X + r * K, K, C, V, RP[r], ones);
    event_rows_blocked(lo, hi, N, Bp, RP, C, ones ? nullptr : V, packed, K, Y);
    if (!ones) binary.store(false);
  });
  if (binary.load()) val = at::empty({0}, x.options());
  return {y, row_ptr, col, val};
}

// a [R, C] float32 contiguous -> a^T [C, R] contiguous.  ATen's strided copy for
// `a.t().contiguous()` reads one side with a stride of C floats, and at C = 768 (3 KiB, a multiple
// of 1 KiB) its rows fall into a few L1 sets: 1.17 ms for 768 x 768 on one Zen 3 core.  Here
// 8 x 8 blocks are transposed in AVX2 registers (8 loads, 24 shuffles, 8 stores) inside 64 x 64
// tiles; edges are copied one by one.  Exact (a copy).
static at::Tensor transposed(const at::Tensor& a) {
  const int64_t R = a.size(0), C = a.size(1);
  auto out = at::empty({C, R}, a.options());
  const float* A = a.data_ptr<float>();
  float* O = out.data_ptr<float>();
  constexpr int64_t kTile = 64;
  at::parallel_for(0, (R + kTile - 1) / kTile, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t rt = lo; rt < hi; ++rt) {
      const int64_t r0 = rt * kTile, r1 = std::min(R, r0 + kTile);
      for (int64_t c0 = 0; c0 < C; c0 += kTile) {
        const int64_t c1 = std::min(C, c0 + kTile);
        int64_t rv = r0, cv = c0;  // the part covered by full 8 x 8 blocks: [r0, rv) x [c0, cv)
#if defined(__AVX2__)
        rv = r0 + (r1 - r0) / 8 * 8;
        cv = c0 + (c1 - c0) / 8 * 8;
        for (int64_t r = r0; r < rv; r += 8) {
          for (int64_t c = c0; c < cv; c += 8) {
            const float* src = A + r * C + c;
            __m256 t0 = _mm256_loadu_ps(src), t1 = _mm256_loadu_ps(src + C),
                   t2 = _mm256_loadu_ps(src + 2 * C), t3 = _mm256_loadu_ps(src + 3 * C),
                   t4 = _mm256_loadu_ps(src + 4 * C), t5 = _mm256_loadu_ps(src + 5 * C),
                   t6 = _mm256_loadu_ps(src + 6 * C), t7 = _mm256_loadu_ps(src + 7 * C);
            __m256 u0 = _mm256_unpacklo_ps(t0, t1), u1 = _mm256_unpackhi_ps(t0, t1),
                   u2 = _mm256_unpacklo_ps(t2, t3), u3 = _mm256_unpackhi_ps(t2, t3),
                   u4 = _mm256_unpacklo_ps(t4, t5), u5 = _mm256_unpackhi_ps(t4, t5),
                   u6 = _mm256_unpacklo_ps(t6, t7), u7 = _mm256_unpackhi_ps(t6, t7);
            __m256 v0 = _mm256_shuffle_ps(u0, u2, 0x44), v1 = _mm256_shuffle_ps(u0, u2, 0xEE),
                   v2 = _mm256_shuffle_ps(u1, u3, 0x44), v3 = _mm256_shuffle_ps(u1, u3, 0xEE),
                   v4 = _mm256_shuffle_ps(u4, u6, 0x44), v5 = _mm256_shuffle_ps(u4, u6, 0xEE),
                   v6 = _mm256_shuffle_ps(u5, u7, 0x44), v7 = _mm256_shuffle_ps(u5, u7, 0xEE);
            float* dst = O + c * R + r;
            _mm256_storeu_ps(dst, _mm256_permute2f128_ps(v0, v4, 0x20));
            _mm256_storeu_ps(dst + R, _mm256_permute2f128_ps(v1, v5, 0x20));
            _mm256_storeu_ps(dst + 2 * R, _mm256_permute2f128_ps(v2, v6, 0x20));
            _mm256_storeu_ps(dst + 3 * R, _mm256_permute2f128_ps(v3, v7, 0x20));
            _mm256_storeu_ps(dst + 4 * R, _mm256_permute2f128_ps(v0, v4, 0x31));
            _mm256_storeu_ps(dst + 5 * R, _mm256_permute2f128_ps(v1, v5, 0x31));
            _mm256_storeu_ps(dst + 6 * R, _mm256_permute2f128_ps(v2, v6, 0x31));
            _mm256_storeu_ps(dst + 7 * R, _mm256_permute2f128_ps(v3, v7, 0x31));
          }
        }
#endif
        for (int64_t c = c0; c < c1; ++c) {  // edges: columns past cv, rows past rv
          float* __restrict__ o = O + c * R;
          for (int64_t r = (c < cv ? rv : r0); r < r1; ++r) o[r] = A[r * C + c];
        }
      }
    }
  });
  return out;
}

// Rows of the output gradient per block of the weight gradient: a block's [kRowBlock, kBlock]
// tile of grad_output (32 KiB) stays in L1 while every input column gathers from it (measured,
// 1 thread, Zen 3: 0-20 % faster than 1024-row blocks, which stay in L2).
constexpr int64_t kRowBlock = 128;

// Event-driven linear layer, weight gradient: gw[n, k] = sum_r x[r, k] * gy[r, n] over the
// non-zeros of x (CSR row_ptr/col/val of the forward; val empty = all ones).  The events are
// regrouped by input column (CSC, rows ascending, per block of kRowBlock rows); then for each row
// block, block of kBlock output columns and input column k, the kBlock sums gw^T[k, j0:j0+kBlock]
// stay in vector registers while the gy rows of k's events are added (one load per event instead
// of the load, add and store of a scatter).  Each element is the sum of its terms in ascending r,
// starting from 0, so the result is bit-identical to the scatter loop
// `for r: for k in row r: gw^T[k, :] += x[r, k] * gy[r, :]` and does not depend on the blocking
// or the thread count (threads own disjoint ranges of k).  Returns gw [N, K] (the weight's layout).
at::Tensor spike_linear_backward_weight(const at::Tensor& row_ptr, const at::Tensor& col,
                                        const at::Tensor& val, const at::Tensor& gy, int64_t K) {
  check_lif(gy, "grad_output");
  const int64_t R = gy.size(0), N = gy.size(1);
  TORCH_CHECK(row_ptr.numel() == R + 1, "spike_linear_backward_weight: row_ptr must have R+1 entries");
  const int64_t* RP = row_ptr.data_ptr<int64_t>();
  const int32_t* C = col.data_ptr<int32_t>();
  const bool has_val = val.numel() > 0;
  const float* V = has_val ? val.data_ptr<float>() : nullptr;
  const float* G = gy.data_ptr<float>();
  const int64_t nnz = RP[R];
  const int64_t nrb = std::max<int64_t>(1, (R + kRowBlock - 1) / kRowBlock);
  // CSC per row block: column k of row block b holds events cp[b*K + k] .. cp[b*K + k + 1]
  std::vector<int64_t> cp(static_cast<size_t>(nrb * K + 1), 0);
  at::parallel_for(0, nrb, 1, [&](int64_t blo, int64_t bhi) {
    for (int64_t b = blo; b < bhi; ++b) {
      int64_t* cnt = cp.data() + b * K + 1;
      for (int64_t r = b * kRowBlock, r1 = std::min(R, r + kRowBlock); r < r1; ++r) {
        for (int64_t q = RP[r]; q < RP[r + 1]; ++q) ++cnt[C[q]];
      }
    }
  });
  for (int64_t i = 0; i < nrb * K; ++i) cp[i + 1] += cp[i];
  std::vector<int32_t> rows(static_cast<size_t>(nnz));
  std::vector<float> vals(has_val ? static_cast<size_t>(nnz) : 0);
  at::parallel_for(0, nrb, 1, [&](int64_t blo, int64_t bhi) {
    std::vector<int64_t> pos(static_cast<size_t>(K));
    for (int64_t b = blo; b < bhi; ++b) {
      std::copy(cp.begin() + b * K, cp.begin() + (b + 1) * K, pos.begin());
      for (int64_t r = b * kRowBlock, r1 = std::min(R, r + kRowBlock); r < r1; ++r) {
        for (int64_t q = RP[r]; q < RP[r + 1]; ++q) {
          const int64_t p = pos[C[q]]++;
          rows[p] = static_cast<int32_t>(r);
          if (has_val) vals[p] = V[q];
        }
      }
    }
  });
  auto gwt = at::empty({K, N}, gy.options());
  float* GW = gwt.data_ptr<float>();
  const float* VS = has_val ? vals.data() : nullptr;
  alignas(32) static const float zeros[kBlock] = {};
  at::parallel_for(0, K, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t b = 0; b < nrb; ++b) {
      for (int64_t j0 = 0; j0 < N; j0 += kBlock) {
        const int64_t w = std::min(kBlock, N - j0);
        for (int64_t k = lo; k < hi; ++k) {
          const int64_t q0 = cp[b * K + k], q1 = cp[b * K + k + 1];
          float* o = GW + k * N + j0;
          if (b > 0 && q0 == q1) continue;  // no event: the partial sum stands
          const float* init = b == 0 ? zeros : o;
          if (w == kBlock) {
            event_block(init, rows.data(), VS, q0, q1, G + j0, N, o);
          } else {
            event_block_n(w, init, rows.data(), VS, q0, q1, G + j0, N, o);
          }
        }
      }
    }
  });
  return transposed(gwt);
}

}  // namespace

// Integer LIF over time for the reference executor (neuro/graph/intsim.py), one population.
// a [T, M] int64: synaptic input (already weight_exp-shifted); bias [M] int64 (v units).
// Per-element parameters p0..p3 [M] int64 and vth [M] int64:
//   family 0 (Loihi, Lava PyLifModelBitAcc): p0 = du, p1 = dv; u and v 24-bit, input << 6,
//            v > vth << 6, reset to 0.
//   family 1 (fixed): p0 = beta code, p1 = alpha code (cuba only); decay_mode 0 = mantissa
//            ((v * m) >> decay_bits), 1 = shift (v - (v >> k), k = 0: no leak); rounding 0 =
//            toward zero, 1 = floor; overflow 0 = wrap, 1 = saturate to state_bits; rule 0 = gt,
//            1 = ge; reset 0 = zero, 1 = subtract.
// spiking = false gives a leaky integrator (output v).  Returns (out [T, M], v_trace [T, M]).
namespace {
inline int64_t shr_round(int64_t x, int64_t k, bool toward_zero) {
  if (toward_zero) return x < 0 ? -((-x) >> k) : (x >> k);
  return x >> k;  // arithmetic shift: floor
}

// The integer neuron of both families (see int_lif_forward); one element, one step.
struct IntLif {
  int64_t family;
  bool cuba, spiking;
  int64_t decay_mode, decay_bits;
  bool toward_zero, saturate;
  int64_t state_bits;
  bool rule_ge, reset_subtract;

  int64_t overflow(int64_t x) const {
    const int64_t smax = (int64_t(1) << (state_bits - 1)) - 1, smin = -smax - 1;
    if (saturate) return std::min(std::max(x, smin), smax);
    const int64_t span = int64_t(1) << state_bits;
    int64_t y = (x - smin) % span;
    if (y < 0) y += span;
    return y + smin;
  }
  int64_t decay(int64_t x, int64_t code) const {
    if (decay_mode == 0) return shr_round(x * code, decay_bits, toward_zero);
    if (code == 0) return x;
    return x - shr_round(x, code, toward_zero);
  }
  // x: synaptic input; u, v: state (updated); returns the spike (0/1) or, non-spiking, v.
  int64_t step(int64_t x, int64_t& u, int64_t& v, int64_t p0, int64_t p1, int64_t vth,
               int64_t bias) const {
    if (family == 0) {  // Loihi: p0 = du, p1 = dv
      const int64_t m = int64_t(1) << 23;
      u = shr_round(u * (4096 - (p0 + 1)), 12, true) + (x << 6);
      if (u > m) u -= 2 * m; else if (u <= -m) u += 2 * m;
      v = shr_round(v * (4096 - p1), 12, true) + u + bias;
      v = std::min(std::max(v, -(m - 1)), m - 1);
      if (!spiking) return v;
      const bool s = v > (vth << 6);
      if (s) v = 0;
      return s ? 1 : 0;
    }
    int64_t in = x;  // fixed: p0 = beta code, p1 = alpha code
    if (cuba) {
      u = overflow(decay(u, p1) + x);
      in = u;
    }
    v = overflow(decay(v, p0) + in + bias);
    if (!spiking) return v;
    const bool s = rule_ge ? v >= vth : v > vth;
    if (s) v = reset_subtract ? v - vth : 0;
    return s ? 1 : 0;
  }
};

// IntLif::step for the Loihi family over neurons [lo, hi) and all T steps, written without
// branches so that the inner loop vectorizes; bit for bit the same arithmetic.
template <bool SPIKING>
void loihi_rows(const int64_t* A, int64_t* O, int64_t* VR, int64_t* __restrict__ u,
                int64_t* __restrict__ v, const int64_t* p0, const int64_t* p1, const int64_t* vth,
                const int64_t* bias, int64_t T, int64_t M, int64_t lo, int64_t hi) {
  const int64_t m = int64_t(1) << 23;
  const int64_t n = hi - lo;
  const int64_t* __restrict__ P0 = p0 + lo;
  const int64_t* __restrict__ P1 = p1 + lo;
  const int64_t* __restrict__ VT = vth + lo;
  const int64_t* __restrict__ BI = bias + lo;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t* __restrict__ at = A + t * M + lo;
    int64_t* __restrict__ ot = O + t * M + lo;
    int64_t* __restrict__ vt = VR + t * M + lo;
    for (int64_t k = 0; k < n; ++k) {
      const int64_t pu = u[k] * (4096 - (P0[k] + 1));
      int64_t uu = (pu < 0 ? -((-pu) >> 12) : (pu >> 12)) + (at[k] << 6);
      uu = uu > m ? uu - 2 * m : (uu <= -m ? uu + 2 * m : uu);
      const int64_t pv = v[k] * (4096 - P1[k]);
      int64_t vv = (pv < 0 ? -((-pv) >> 12) : (pv >> 12)) + uu + BI[k];
      vv = vv < -(m - 1) ? -(m - 1) : (vv > m - 1 ? m - 1 : vv);
      u[k] = uu;
      if (SPIKING) {
        const int64_t s = vv > (VT[k] << 6) ? 1 : 0;
        vv = s ? 0 : vv;
        ot[k] = s;
      } else {
        ot[k] = vv;
      }
      v[k] = vv;
      vt[k] = vv;
    }
  }
}

void check_long(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.scalar_type() == at::kLong && t.is_contiguous() && t.device().is_cpu(), what,
              ": int64 contiguous CPU tensors expected");
}
}  // namespace

std::tuple<at::Tensor, at::Tensor> int_lif_forward(
    const at::Tensor& a, const at::Tensor& bias, const at::Tensor& p0, const at::Tensor& p1,
    const at::Tensor& vth, int64_t family, bool cuba, bool spiking, int64_t decay_mode,
    int64_t decay_bits, bool toward_zero, bool saturate, int64_t state_bits, bool rule_ge,
    bool reset_subtract) {
  for (const auto* t : {&a, &bias, &p0, &p1, &vth}) check_long(*t, "int_lif_forward");
  const int64_t T = a.size(0), M = a.size(1);
  TORCH_CHECK(bias.numel() == M && p0.numel() == M && p1.numel() == M && vth.numel() == M,
              "int_lif_forward: parameters must have M elements");
  const IntLif n{family, cuba, spiking, decay_mode, decay_bits, toward_zero, saturate,
                 state_bits, rule_ge, reset_subtract};
  auto out = at::empty({T, M}, a.options());
  auto vtr = at::empty({T, M}, a.options());
  const int64_t *A = a.data_ptr<int64_t>(), *BI = bias.data_ptr<int64_t>();
  const int64_t *P0 = p0.data_ptr<int64_t>(), *P1 = p1.data_ptr<int64_t>();
  const int64_t* VT = vth.data_ptr<int64_t>();
  int64_t* O = out.data_ptr<int64_t>();
  int64_t* VR = vtr.data_ptr<int64_t>();
  if (family == 0) {  // Loihi: a branch-free loop the compiler vectorizes (same arithmetic)
    at::parallel_for(0, M, 256, [&](int64_t lo, int64_t hi) {
      std::vector<int64_t> u(hi - lo, 0), v(hi - lo, 0);
      if (spiking) {
        loihi_rows<true>(A, O, VR, u.data(), v.data(), P0, P1, VT, BI, T, M, lo, hi);
      } else {
        loihi_rows<false>(A, O, VR, u.data(), v.data(), P0, P1, VT, BI, T, M, lo, hi);
      }
    });
    return {out, vtr};
  }
  // time outer, neurons inner: each thread walks its block of neurons row by row (contiguous)
  at::parallel_for(0, M, 256, [&](int64_t lo, int64_t hi) {
    std::vector<int64_t> u(hi - lo, 0), v(hi - lo, 0);
    for (int64_t t = 0; t < T; ++t) {
      const int64_t* at = A + t * M;
      int64_t* ot = O + t * M;
      int64_t* vt = VR + t * M;
      for (int64_t j = lo; j < hi; ++j) {
        int64_t& uj = u[j - lo];
        int64_t& vj = v[j - lo];
        ot[j] = n.step(at[j], uj, vj, P0[j], P1[j], VT[j], BI[j]);
        vt[j] = vj;
      }
    }
  });
  return {out, vtr};
}

// A recurrent integer population: per step, a = a_ext[t] + shift(W o[t-1], weight_exp), then
// the neuron step.  a_ext [T, B, N]; w_t = W^T [N, N] (row j: the weights leaving neuron j);
// o is the population's output (spikes, or v for a non-spiking population); the recurrent sum
// is event-driven (only non-zero outputs are visited).  Parameters as in int_lif_forward, [N].
std::tuple<at::Tensor, at::Tensor> int_recurrent_lif_forward(
    const at::Tensor& a_ext, const at::Tensor& w_t, int64_t weight_exp, const at::Tensor& bias,
    const at::Tensor& p0, const at::Tensor& p1, const at::Tensor& vth, int64_t family, bool cuba,
    bool spiking, int64_t decay_mode, int64_t decay_bits, bool toward_zero, bool saturate,
    int64_t state_bits, bool rule_ge, bool reset_subtract) {
  for (const auto* t : {&a_ext, &w_t, &bias, &p0, &p1, &vth}) check_long(*t, "int_recurrent_lif");
  TORCH_CHECK(a_ext.dim() == 3, "int_recurrent_lif: a_ext must be [T, B, N]");
  const int64_t T = a_ext.size(0), B = a_ext.size(1), N = a_ext.size(2);
  TORCH_CHECK(w_t.size(0) == N && w_t.size(1) == N, "int_recurrent_lif: w_t must be [N, N]");
  const IntLif n{family, cuba, spiking, decay_mode, decay_bits, toward_zero, saturate,
                 state_bits, rule_ge, reset_subtract};
  auto out = at::empty({T, B, N}, a_ext.options());
  auto vtr = at::empty({T, B, N}, a_ext.options());
  const int64_t *A = a_ext.data_ptr<int64_t>(), *W = w_t.data_ptr<int64_t>();
  const int64_t *BI = bias.data_ptr<int64_t>(), *P0 = p0.data_ptr<int64_t>();
  const int64_t *P1 = p1.data_ptr<int64_t>(), *VT = vth.data_ptr<int64_t>();
  int64_t* O = out.data_ptr<int64_t>();
  int64_t* VR = vtr.data_ptr<int64_t>();
  at::parallel_for(0, B, 1, [&](int64_t blo, int64_t bhi) {
    std::vector<int64_t> u(N), v(N), prev(N), rec(N);
    for (int64_t b = blo; b < bhi; ++b) {
      std::fill(u.begin(), u.end(), 0);
      std::fill(v.begin(), v.end(), 0);
      std::fill(prev.begin(), prev.end(), 0);
      for (int64_t t = 0; t < T; ++t) {
        std::fill(rec.begin(), rec.end(), 0);
        for (int64_t j = 0; j < N; ++j) {
          const int64_t o = prev[j];
          if (o == 0) continue;
          const int64_t* wj = W + j * N;
          for (int64_t i = 0; i < N; ++i) rec[i] += wj[i] * o;
        }
        const int64_t* at = A + (t * B + b) * N;
        int64_t* ot = O + (t * B + b) * N;
        int64_t* vt = VR + (t * B + b) * N;
        for (int64_t i = 0; i < N; ++i) {
          const int64_t r = weight_exp >= 0 ? (rec[i] << weight_exp) : (rec[i] >> -weight_exp);
          ot[i] = n.step(at[i] + r, u[i], v[i], P0[i], P1[i], VT[i], BI[i]);
          vt[i] = v[i];
        }
        std::copy(ot, ot + N, prev.begin());
      }
    }
  });
  return {out, vtr};
}

// Integer synapse sum for mostly-zero inputs: out[r] = sum_i x[r, i] * w_t[i] over the non-zero
// x[r, i] only (event-driven). x [R, in] int64, w_t = W^T [in, out] int64 or int32, out int64.
// With int32 weights the row is accumulated in int32: the caller guarantees that every partial
// sum fits (|x| row sum times max |w| < 2^31), so the result is exact and twice as wide in SIMD.
template <typename W_T>
void event_rows(const int64_t* X, const W_T* W, int64_t* Y, int64_t R, int64_t I, int64_t O) {
  at::parallel_for(0, R, 16, [&](int64_t lo, int64_t hi) {
    std::vector<W_T> acc(O);
    for (int64_t r = lo; r < hi; ++r) {
      std::fill(acc.begin(), acc.end(), W_T(0));
      W_T* __restrict__ ar = acc.data();
      const int64_t* xr = X + r * I;
      for (int64_t i = 0; i < I; ++i) {
        const int64_t c = xr[i];
        if (c == 0) continue;
        const W_T* __restrict__ wi = W + i * O;
        if (c == 1) {
          for (int64_t o = 0; o < O; ++o) ar[o] += wi[o];
        } else {
          const W_T cc = static_cast<W_T>(c);
          for (int64_t o = 0; o < O; ++o) ar[o] += cc * wi[o];
        }
      }
      int64_t* yr = Y + r * O;
      for (int64_t o = 0; o < O; ++o) yr[o] = static_cast<int64_t>(ar[o]);
    }
  });
}

at::Tensor int_event_matmul(const at::Tensor& x, const at::Tensor& w_t) {
  check_long(x, "int_event_matmul");
  TORCH_CHECK(w_t.is_contiguous() && w_t.device().is_cpu() &&
                  (w_t.scalar_type() == at::kLong || w_t.scalar_type() == at::kInt),
              "int_event_matmul: w_t must be a contiguous int64 or int32 CPU tensor");
  TORCH_CHECK(x.dim() == 2 && w_t.dim() == 2 && x.size(1) == w_t.size(0),
              "int_event_matmul: x [R, in] and w_t [in, out] expected");
  const int64_t R = x.size(0), I = x.size(1), O = w_t.size(1);
  auto out = at::empty({R, O}, x.options());
  if (w_t.scalar_type() == at::kInt) {
    event_rows<int32_t>(x.data_ptr<int64_t>(), w_t.data_ptr<int32_t>(), out.data_ptr<int64_t>(),
                        R, I, O);
  } else {
    event_rows<int64_t>(x.data_ptr<int64_t>(), w_t.data_ptr<int64_t>(), out.data_ptr<int64_t>(),
                        R, I, O);
  }
  return out;
}

TORCH_LIBRARY(neuro_ops, m) {
  m.def("int_event_matmul", &int_event_matmul);
  m.def("lif_forward", &lif_forward);
  m.def("lif_backward", &lif_backward);
  m.def("spike_linear_pack", &spike_linear_pack);
  m.def("spike_linear_forward", &spike_linear_forward);
  m.def("spike_linear_backward_weight", &spike_linear_backward_weight);
  m.def("int_lif_forward", &int_lif_forward);
  m.def("int_recurrent_lif_forward", &int_recurrent_lif_forward);
}
