// Event-driven DCLS delay convolution (neuro/kernels/dcls.py): the training path of
// neuro.layers.DelayedLinear for sparse inputs (SHD frames, spikes).
//
// The layer is y[t, b, o] = sum_i sum_d x[t - d, b, i] * kernel[o, i, K-1-d], t in [0, Tout),
// d in [0, K) (x = 0 outside [0, T)): a cross-correlation over the input padded with K-1 zero
// steps on the left.  Written per input event (b, s, i, c = x[s, b, i] != 0):
//
//   forward:          y[s + d, b, :]   += c * kernel[:, i, K-1-d]        (d < K, s + d < Tout)
//   kernel gradient:  gk[:, i, K-1-d]  += c * gy[s + d, b, :]
//
// so the work is nnz(x) * K * O multiply-adds instead of T * B * I * K * O.  Both loops are
// "sum over a list of events of c_e times a vector read at an event-dependent offset", computed
// with register accumulators for a block of taps d and a chunk of VW outputs o (gather_acc); the
// operand read per event (the kernel for the forward pass, the output gradient for the kernel
// gradient) is first packed into a [chunk of VW outputs][row][tap][VW] layout that stays in the
// L2 cache while the events stream by.
//
// Summation order differs from a dense convolution; results agree to float32 rounding
// (tests/neuro/test_dcls_kernels.py).  Registered as torch.ops.neuro_dcls.*; built on first use
// by neuro/kernels/_ext.py.  Layout: x, y, gy time-first [T, B, C] contiguous float32.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>  // at::get_num_threads
#include <torch/library.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace {

// ---- a vector of VW floats --------------------------------------------------------------
#if defined(__AVX512F__)
constexpr int VW = 16;
constexpr int DBMAX = 16;  // accumulators (taps) held in registers: 16 of 32 zmm registers
using vf = __m512;
inline vf vzero() { return _mm512_setzero_ps(); }
inline vf vset1(float c) { return _mm512_set1_ps(c); }
inline vf vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, vf a) { _mm512_storeu_ps(p, a); }
inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int VW = 8;
constexpr int DBMAX = 12;  // of 16 ymm registers
using vf = __m256;
inline vf vzero() { return _mm256_setzero_ps(); }
inline vf vset1(float c) { return _mm256_set1_ps(c); }
inline vf vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, vf a) { _mm256_storeu_ps(p, a); }
inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
#else
constexpr int VW = 4;
constexpr int DBMAX = 8;
struct vf {
  float v[4];
};
inline vf vzero() { return vf{{0.f, 0.f, 0.f, 0.f}}; }
inline vf vset1(float c) { return vf{{c, c, c, c}}; }
inline vf vload(const float* p) { return vf{{p[0], p[1], p[2], p[3]}}; }
inline void vstore(float* p, vf a) {
  for (int q = 0; q < 4; ++q) p[q] = a.v[q];
}
inline vf vfma(vf a, vf b, vf c) {
  vf r;
  for (int q = 0; q < 4; ++q) r.v[q] = std::fma(a.v[q], b.v[q], c.v[q]);
  return r;
}
inline vf vadd(vf a, vf b) {
  vf r;
  for (int q = 0; q < 4; ++q) r.v[q] = a.v[q] + b.v[q];
  return r;
}
#endif

// out[j] += sum_{e < m} c[e] * base[off[e] + j * VW]   for the NB vectors j < NB.
template <int NB>
inline void gather_acc(int64_t m, const float* __restrict__ c, const int64_t* __restrict__ off,
                       const float* __restrict__ base, float* __restrict__ out) {
  vf acc[NB];
#pragma GCC unroll 16
  for (int j = 0; j < NB; ++j) acc[j] = vzero();
  for (int64_t e = 0; e < m; ++e) {
    const vf cv = vset1(c[e]);
    const float* p = base + off[e];
#pragma GCC unroll 16
    for (int j = 0; j < NB; ++j) acc[j] = vfma(cv, vload(p + j * VW), acc[j]);
  }
#pragma GCC unroll 16
  for (int j = 0; j < NB; ++j) vstore(out + j * VW, vadd(vload(out + j * VW), acc[j]));
}

using GatherFn = void (*)(int64_t, const float*, const int64_t*, const float*, float*);

template <int... N>
constexpr std::array<GatherFn, sizeof...(N)> gather_table(std::integer_sequence<int, N...>) {
  return {&gather_acc<N + 1>...};
}
// kGather[nb - 1] handles a block of nb taps (1 <= nb <= DBMAX)
constexpr auto kGather = gather_table(std::make_integer_sequence<int, DBMAX>{});

// The taps 0..K-1 in blocks of at most DBMAX, sizes as equal as possible (K = 25 with
// DBMAX = 16: 13 + 12, never a block of 1).
std::vector<std::pair<int64_t, int64_t>> tap_blocks(int64_t K) {
  const int64_t nblk = (K + DBMAX - 1) / DBMAX;
  std::vector<std::pair<int64_t, int64_t>> out;
  int64_t d0 = 0;
  for (int64_t q = 0; q < nblk; ++q) {
    const int64_t nb = (K - d0) / (nblk - q);
    out.emplace_back(d0, nb);
    d0 += nb;
  }
  return out;
}

// parallel_for over [begin, end) in at::get_num_threads() contiguous pieces of at least `grain`
// items, on std::threads.  (at::parallel_for is an inline OpenMP template: in an extension built
// without -fopenmp it runs serially.)
template <class F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& f) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  int64_t nt = std::max<int64_t>(1, at::get_num_threads());
  nt = std::min(nt, (n + std::max<int64_t>(grain, 1) - 1) / std::max<int64_t>(grain, 1));
  if (nt <= 1) {
    f(begin, end);
    return;
  }
  const int64_t chunk = (n + nt - 1) / nt;
  std::exception_ptr error;
  std::mutex lock;
  auto run = [&](int64_t t) {
    const int64_t lo = begin + t * chunk, hi = std::min(end, lo + chunk);
    if (lo >= hi) return;
    try {
      f(lo, hi);
    } catch (...) {
      std::lock_guard<std::mutex> g(lock);
      if (!error) error = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(nt - 1);
  for (int64_t t = 1; t < nt; ++t) threads.emplace_back(run, t);
  run(0);
  for (auto& th : threads) th.join();
  if (error) std::rethrow_exception(error);
}

void check_f32(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), "neuro_dcls: ", name, " must be a CPU tensor");
  TORCH_CHECK(t.scalar_type() == at::kFloat, "neuro_dcls: ", name, " must be float32");
  TORCH_CHECK(t.is_contiguous(), "neuro_dcls: ", name, " must be contiguous");
}

void check_events(const at::Tensor& bptr, const at::Tensor& s, const at::Tensor& i,
                  const at::Tensor& c) {
  TORCH_CHECK(bptr.scalar_type() == at::kLong && bptr.is_contiguous() && bptr.dim() == 1,
              "neuro_dcls: bptr must be a contiguous int64 vector");
  TORCH_CHECK(s.scalar_type() == at::kInt && i.scalar_type() == at::kInt && s.is_contiguous() &&
                  i.is_contiguous(), "neuro_dcls: event steps and inputs must be contiguous int32");
  check_f32(c, "event values");
  const int64_t nnz = bptr[bptr.numel() - 1].item<int64_t>();
  TORCH_CHECK(s.numel() == nnz && i.numel() == nnz && c.numel() == nnz,
              "neuro_dcls: event arrays do not match bptr");
}

// Number of non-zero entries of r[0:n] (NaN counts as non-zero, as in `v != 0`).
inline int64_t count_nonzero(const float* __restrict__ r, int64_t n) {
  int64_t m = 0, i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16)
    m += __builtin_popcount(_mm512_cmp_ps_mask(_mm512_loadu_ps(r + i), _mm512_setzero_ps(), _CMP_NEQ_UQ));
#endif
  for (; i < n; ++i) m += (r[i] != 0.0f);
  return m;
}

// Indices and values of the non-zeros of r[0:n], in order, into idx/val (which need VW - 1
// entries of slack past the count); returns the count.
inline int64_t compact_row(const float* __restrict__ r, int64_t n, int32_t* __restrict__ idx,
                           float* __restrict__ val) {
  int64_t m = 0, i = 0;
#if defined(__AVX512F__)
  __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i sixteen = _mm512_set1_epi32(16);
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(r + i);
    const __mmask16 k = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
    if (k) {
      _mm512_storeu_ps(val + m, _mm512_maskz_compress_ps(k, v));
      _mm512_storeu_si512(idx + m, _mm512_maskz_compress_epi32(k, iota));
      m += __builtin_popcount(k);
    }
    iota = _mm512_add_epi32(iota, sixteen);
  }
#endif
  for (; i < n; ++i) {  // branch-free
    const float v = r[i];
    idx[m] = static_cast<int32_t>(i);
    val[m] = v;
    m += (v != 0.0f);
  }
  return m;
}

}  // namespace

// Events of x [T, B, I]: for each sample b the non-zeros in order of (step s, input i):
// bptr [B + 1] (int64, events of b are bptr[b] .. bptr[b+1]-1), s, i [nnz] int32, c [nnz] float.
// When more than max_density of x is non-zero the scan stops after counting and bptr is
// returned empty: the caller then runs the dense convolution.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> dcls_events(const at::Tensor& x,
                                                                       double max_density) {
  check_f32(x, "x");
  TORCH_CHECK(x.dim() == 3, "neuro_dcls: x must be [T, B, I]");
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2);
  TORCH_CHECK(T < INT32_MAX && I < INT32_MAX, "neuro_dcls: T and I must fit int32");
  const float* X = x.data_ptr<float>();
  auto bptr = at::empty({B + 1}, x.options().dtype(at::kLong));
  int64_t* BP = bptr.data_ptr<int64_t>();
  BP[0] = 0;
  parallel_for(0, B, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      int64_t n = 0;
      for (int64_t t = 0; t < T; ++t) n += count_nonzero(X + (t * B + b) * I, I);
      BP[b + 1] = n;
    }
  });
  for (int64_t b = 0; b < B; ++b) BP[b + 1] += BP[b];
  const int64_t nnz = BP[B];
  auto ints = x.options().dtype(at::kInt);
  if (static_cast<double>(nnz) > max_density * static_cast<double>(x.numel())) {
    return {at::empty({0}, bptr.options()), at::empty({0}, ints), at::empty({0}, ints),
            at::empty({0}, x.options())};
  }
  auto es = at::empty({nnz}, ints);
  auto ei = at::empty({nnz}, ints);
  auto ec = at::empty({nnz}, x.options());
  int32_t* S = es.data_ptr<int32_t>();
  int32_t* II = ei.data_ptr<int32_t>();
  float* C = ec.data_ptr<float>();
  parallel_for(0, B, 1, [&](int64_t lo, int64_t hi) {
    std::vector<int32_t> ri(I + VW);  // VW floats of slack: compact_row stores whole vectors
    std::vector<float> rc(I + VW);
    for (int64_t b = lo; b < hi; ++b) {
      int64_t p = BP[b];
      for (int64_t t = 0; t < T; ++t) {
        const int64_t n = compact_row(X + (t * B + b) * I, I, ri.data(), rc.data());
        std::fill(S + p, S + p + n, static_cast<int32_t>(t));
        std::copy(ri.data(), ri.data() + n, II + p);
        std::copy(rc.data(), rc.data() + n, C + p);
        p += n;
      }
    }
  });
  return {bptr, es, ei, ec};
}

// Forward: y [Tout, B, O] = bias + the delayed sum of the events (see the file comment).
// kernel [O, I, K] (tap k = delay K-1-k), bias [O] or undefined.
at::Tensor dcls_forward(const at::Tensor& bptr, const at::Tensor& es, const at::Tensor& ei,
                        const at::Tensor& ec, const at::Tensor& kernel,
                        const c10::optional<at::Tensor>& bias, int64_t Tout) {
  check_events(bptr, es, ei, ec);
  check_f32(kernel, "kernel");
  TORCH_CHECK(kernel.dim() == 3, "neuro_dcls: kernel must be [O, I, K]");
  const int64_t B = bptr.numel() - 1, O = kernel.size(0), I = kernel.size(1), K = kernel.size(2);
  const bool has_bias = bias.has_value() && bias->defined();
  if (has_bias) {
    check_f32(*bias, "bias");
    TORCH_CHECK(bias->numel() == O, "neuro_dcls: bias must have O elements");
  }
  const int64_t Oc = (O + VW - 1) / VW;
  // kP[oc][i][d][q] = kernel[oc * VW + q, i, K - 1 - d]  (zero for o >= O)
  auto kP = at::zeros({Oc, I, K, VW}, kernel.options());
  const float* KS = kernel.data_ptr<float>();
  float* KP = kP.data_ptr<float>();
  parallel_for(0, O, 8, [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o)
      for (int64_t i = 0; i < I; ++i)
        for (int64_t d = 0; d < K; ++d)
          KP[(((o / VW) * I + i) * K + d) * VW + (o % VW)] = KS[(o * I + i) * K + (K - 1 - d)];
  });
  auto y = at::empty({Tout, B, O}, kernel.options());
  const int64_t* BP = bptr.data_ptr<int64_t>();
  const int32_t* S = es.data_ptr<int32_t>();
  const int32_t* II = ei.data_ptr<int32_t>();
  const float* C = ec.data_ptr<float>();
  const float* BI = has_bias ? bias->data_ptr<float>() : nullptr;
  float* Y = y.data_ptr<float>();
  const auto blocks = tap_blocks(K);
  // work items: (output chunk, block of samples); one thread's consecutive items share the
  // packed kernel chunk kP[oc] (I * K * VW floats) in its cache
  const int64_t bblk = 8, nbb = (B + bblk - 1) / bblk;
  parallel_for(0, Oc * nbb, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> ybuf((Tout + K) * VW);  // one sample's outputs for this chunk, + K taps
    std::vector<int64_t> off(I);
    std::vector<float> cs(I);
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t oc = item / nbb, bb = item % nbb;
      const float* kpo = KP + oc * I * K * VW;
      const int64_t nq = std::min<int64_t>(VW, O - oc * VW);
      for (int64_t b = bb * bblk; b < std::min(B, (bb + 1) * bblk); ++b) {
        std::fill(ybuf.begin(), ybuf.end(), 0.0f);
        int64_t e = BP[b];
        const int64_t end = BP[b + 1];
        while (e < end) {  // the events of one step s: one pass per tap block
          const int64_t s = S[e];
          int64_t m = 0;
          for (; e < end && S[e] == s; ++e, ++m) {
            off[m] = static_cast<int64_t>(II[e]) * K * VW;
            cs[m] = C[e];
          }
          for (const auto& [d0, nb] : blocks)
            kGather[nb - 1](m, cs.data(), off.data(), kpo + d0 * VW, ybuf.data() + (s + d0) * VW);
        }
        for (int64_t t = 0; t < Tout; ++t) {
          float* yr = Y + (t * B + b) * O + oc * VW;
          const float* src = ybuf.data() + t * VW;
          if (BI) {
            for (int64_t q = 0; q < nq; ++q) yr[q] = src[q] + BI[oc * VW + q];
          } else {
            for (int64_t q = 0; q < nq; ++q) yr[q] = src[q];
          }
        }
      }
    }
  });
  return y;
}

// Kernel gradient: gkernel [O, I, K] from the events of x and gy [Tout, B, O].
at::Tensor dcls_backward_kernel(const at::Tensor& bptr, const at::Tensor& es,
                                const at::Tensor& ei, const at::Tensor& ec, const at::Tensor& gy,
                                int64_t I, int64_t K) {
  check_events(bptr, es, ei, ec);
  check_f32(gy, "grad_output");
  TORCH_CHECK(gy.dim() == 3 && gy.size(1) == bptr.numel() - 1,
              "neuro_dcls: grad_output must be [Tout, B, O]");
  const int64_t Tout = gy.size(0), B = gy.size(1), O = gy.size(2);
  const int64_t Oc = (O + VW - 1) / VW, Tp = Tout + K;  // K zero steps: no bounds checks
  const int64_t* BP = bptr.data_ptr<int64_t>();
  const int32_t* S = es.data_ptr<int32_t>();
  const int32_t* II = ei.data_ptr<int32_t>();
  const float* C = ec.data_ptr<float>();
  const int64_t nnz = BP[B];
  const float* G = gy.data_ptr<float>();
  // Samples in blocks of bblk: a block's output gradient for one chunk of VW outputs is packed as
  // slab[b - b0][t][q] = gy[t, b, oc * VW + q] (zero for t >= Tout, the K extra steps) in a
  // per-thread buffer of ~512 KiB that stays in the L2 cache while the events are summed.
  const int64_t bblk = std::max<int64_t>(1, (512 * 1024) / (Tp * VW * 4));
  const int64_t nbb = (B + bblk - 1) / bblk;
  // events regrouped by (block, input i): iptr[bb][i] .. iptr[bb][i+1]-1, with the offset of
  // their (b - b0, s) row in the slab and their value
  std::vector<int64_t> iptr(nbb * (I + 1));
  std::vector<int64_t> off(nnz);
  std::vector<float> cv(nnz);
  parallel_for(0, nbb, 1, [&](int64_t lo, int64_t hi) {
    std::vector<int64_t> next(I);
    for (int64_t bb = lo; bb < hi; ++bb) {
      int64_t* ip = iptr.data() + bb * (I + 1);
      const int64_t b0 = bb * bblk, b1 = std::min(B, b0 + bblk);
      std::fill(ip, ip + I + 1, 0);
      for (int64_t e = BP[b0]; e < BP[b1]; ++e) ip[II[e] + 1]++;
      ip[0] = BP[b0];
      for (int64_t i = 0; i < I; ++i) ip[i + 1] += ip[i];
      std::copy(ip, ip + I, next.begin());
      for (int64_t b = b0; b < b1; ++b)
        for (int64_t e = BP[b]; e < BP[b + 1]; ++e) {
          const int64_t q = next[II[e]]++;
          off[q] = ((b - b0) * Tp + S[e]) * VW;
          cv[q] = C[e];
        }
    }
  });
  // output chunks are independent; with fewer chunks than threads, sample blocks are split
  // between partial sums added at the end
  const int64_t nthreads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t nsplit = std::min<int64_t>(nbb, std::max<int64_t>(1, (nthreads + Oc - 1) / Oc));
  auto gK = at::zeros({nsplit, Oc, I, K, VW}, gy.options());
  float* GK = gK.data_ptr<float>();
  const auto blocks = tap_blocks(K);
  parallel_for(0, Oc * nsplit, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> slab(bblk * Tp * VW);
    for (int64_t it = lo; it < hi; ++it) {
      const int64_t oc = it / nsplit, sp = it % nsplit;
      const int64_t nq = std::min<int64_t>(VW, O - oc * VW);
      float* gko = GK + (sp * Oc + oc) * I * K * VW;
      for (int64_t bb = sp * nbb / nsplit; bb < (sp + 1) * nbb / nsplit; ++bb) {
        const int64_t b0 = bb * bblk, nb_ = std::min(B, b0 + bblk) - b0;
        for (int64_t t = 0; t < Tout; ++t)
          for (int64_t b = 0; b < nb_; ++b) {
            const float* src = G + (t * B + b0 + b) * O + oc * VW;
            float* dst = slab.data() + (b * Tp + t) * VW;
            if (nq == VW) {
              vstore(dst, vload(src));
            } else {
              for (int64_t q = 0; q < VW; ++q) dst[q] = q < nq ? src[q] : 0.0f;
            }
          }
        for (int64_t b = 0; b < nb_; ++b)
          std::fill(slab.data() + (b * Tp + Tout) * VW, slab.data() + (b + 1) * Tp * VW, 0.0f);
        const int64_t* ip = iptr.data() + bb * (I + 1);
        for (int64_t i = 0; i < I; ++i) {
          const int64_t m = ip[i + 1] - ip[i];
          if (m == 0) continue;
          for (const auto& [d0, nb] : blocks)
            kGather[nb - 1](m, cv.data() + ip[i], off.data() + ip[i], slab.data() + d0 * VW,
                            gko + (i * K + d0) * VW);
        }
      }
    }
  });
  // g[o, i, K-1-d] = sum over splits of gK[sp][o / VW][i][d][o % VW]
  auto g = at::empty({O, I, K}, gy.options());
  float* GO = g.data_ptr<float>();
  parallel_for(0, O, 8, [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o)
      for (int64_t i = 0; i < I; ++i)
        for (int64_t d = 0; d < K; ++d) {
          float acc = 0.0f;
          for (int64_t sp = 0; sp < nsplit; ++sp)
            acc += GK[((((sp * Oc) + o / VW) * I + i) * K + d) * VW + (o % VW)];
          GO[(o * I + i) * K + (K - 1 - d)] = acc;
        }
  });
  return g;
}

// Floats per vector of the kernels: outputs are processed in chunks of this many (the last chunk
// padded), which the cost model of neuro/kernels/dcls.py takes into account.
int64_t dcls_vector_width() { return VW; }

TORCH_LIBRARY(neuro_dcls, m) {
  m.def("dcls_vector_width", &dcls_vector_width);
  m.def("dcls_events", &dcls_events);
  m.def("dcls_forward", &dcls_forward);
  m.def("dcls_backward_kernel", &dcls_backward_kernel);
}
