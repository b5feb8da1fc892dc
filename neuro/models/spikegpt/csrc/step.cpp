// SpikeGPT streaming step (neuro/models/spikegpt/step.py): one token for B sequences through
// every block, LN_out and the head, in one call, float32, no autograd.
//
// Per block (the equations of model.py; a = LN1(x), f = LN2(x), sh the token-shift values):
//   x_m = a * mu_m + sh_att * (1 - mu_m)   (m = k, v, r)
//   k = Wk x_k; v = Wv x_v; r = sigmoid(Wr x_r); y = WKV step (float64 state, as wkv.cpp)
//   x += LIF1(Wo (r * y));   f_m = f * nu_m + sh_ffn * (1 - nu_m)   (m = k, r)
//   x += LIF2(sigmoid(Fr f_r) * Fv relu(Fk f_k)^2)
//   LIF: h = v + (cur - v) * (1 - beta); s = [h >= thr]; v = h (1 - s)   (spiking; else s = cur)
// logits = Whead LN_out(x).
//
// Batch-1 token generation is memory bound: every weight is read once per token.  The products
// are matrix-vector products on the (out, in) row-major weights (each output a contiguous dot
// product, 8 rows at a time for one sequence and 4 for several, with AVX2 FMA where available),
// split over threads by rows.  The one exception is Fv: its input relu(.)^2 is zero wherever the
// pre-activation is <= 0, so Fv is given transposed ([H, C]) and only the rows of the non-zero
// hidden units are read (event_product, 8 rows per load and store of the output block).  The
// weights are prefetched in software ahead of use (the hardware prefetcher follows neither the 8
// interleaved row streams nor the data-dependent value rows well; measured: int8 1.9x faster).
// The element-wise work is fused per row; the WKV arithmetic is wkv.cpp's forward step, operation
// for operation (float64), so a stream of steps gives the same WKV state as the parallel pass.
//
// Weights (per block, 18 tensors, in this order): ln1.w, ln1.b, ln2.w, ln2.b, att.w (= -exp(time_decay),
// float32 [C]), att.time_first [C], att.mu_k, mu_v, mu_r [C], att.key, value, receptance, output [C, C],
// ffn.mu_k, mu_r [C], ffn.key [H, C], ffn.receptance [C, C], ffn.value^T [H, C]; then ln_out.w,
// ln_out.b, head [V, C].  The 8 matrices per block and the head may be float32, bfloat16 or int8;
// scales (per block 7 tensors in the order key, value, receptance, output, ffn.key, ffn.receptance,
// ffn.value^T, then the head) are float32 [rows] for an int8 matrix (w = scale[row] q) and empty
// otherwise.  Activations and accumulation stay float32 (the WKV state float64).
// State (per block, 7 tensors [B, C]): att_shift, a, b, p (float64), att_v, ffn_shift,
// ffn_v.  Returns logits [B, V], the residual x [B, C] and the new state (new tensors; the inputs are
// not changed).  Registered as torch.ops.neuro_spikegpt.step; built by neuro/kernels/extension.py.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define NEURO_STEP_AVX2 1
#endif

namespace {

constexpr int64_t kPerBlock = 18;
constexpr int64_t kStatePerBlock = 7;
constexpr int64_t kMatsPerBlock = 7;
// software prefetch distances: of the row products, in groups of 8 rows; of the value product, in
// non-zero rows (measured on a 2-core AMD EPYC, Zen 3; a prefetch changes no result)
constexpr int64_t kPrefetchGroups = 1;
constexpr int64_t kPrefetchRows = 8;
// non-zero rows of the value product added per load and store of its output block
constexpr int kValueRows = 8;

#ifdef NEURO_STEP_AVX2
inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_hadd_ps(lo, lo);
  lo = _mm_hadd_ps(lo, lo);
  return _mm_cvtss_f32(lo);
}
#endif

// Weight element types: float32, bfloat16 (the upper 16 bits of a float32) and int8 (with one
// float32 scale per stored row, symmetric: w = scale[row] * q).
inline float to_float(float w) { return w; }
inline float to_float(at::BFloat16 w) { return static_cast<float>(w); }
inline float to_float(int8_t w) { return static_cast<float>(w); }

#ifdef NEURO_STEP_AVX2
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const at::BFloat16* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline __m256 load8(const int8_t* p) {
  const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
}
#endif

// y[b, o] = scale[o] * sum_i W[o, i] x[b, i] for rows o in [r0, r1); W [O, I] row-major, x [B, I],
// y [B, O]; scale may be null (1).
template <typename T>
void gemv_rows(const T* W, const float* scale, int64_t I, const float* x, int64_t B, int64_t O,
               float* y, int64_t r0, int64_t r1) {
  int64_t o = r0;
#ifdef NEURO_STEP_AVX2
  if (I % 8 == 0 && B == 1) {
    // one sequence: 8 rows at a time (8 independent FMA chains hide the FMA latency). The 8 rows
    // are one contiguous block of 8 I weights, read as 8 short interleaved streams (512 bytes each
    // for int8 and I = 512) that the hardware prefetcher follows poorly: each step of i also
    // prefetches the same share (64 sizeof(T) bytes, sizeof(T) cache lines) of the block
    // kPrefetchGroups groups ahead, so the next groups arrive while this one is summed.
    // (an address, not a pointer: past the last group it points past the matrix, where a prefetch
    // is harmless but pointer arithmetic would not be defined)
    uintptr_t ahead = reinterpret_cast<uintptr_t>(W + o * I) + 8 * kPrefetchGroups * I * sizeof(T);
    for (; o + 8 <= r1; o += 8, ahead += 8 * I * sizeof(T)) {
      const T* w0 = W + o * I;
      __m256 acc[8];
      for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_ps();
      for (int64_t i = 0; i < I; i += 8) {
        const uintptr_t pf = ahead + i * 8 * sizeof(T);
        for (size_t k = 0; k < sizeof(T); ++k) {
          _mm_prefetch(reinterpret_cast<const char*>(pf + 64 * k), _MM_HINT_T0);
        }
        const __m256 xv = _mm256_loadu_ps(x + i);
        for (int j = 0; j < 8; ++j) acc[j] = _mm256_fmadd_ps(load8(w0 + j * I + i), xv, acc[j]);
      }
      for (int j = 0; j < 8; ++j) {
        const float v = hsum(acc[j]);
        y[o + j] = scale != nullptr ? v * scale[o + j] : v;
      }
    }
  }
  if (I % 8 == 0) {
    for (; o + 4 <= r1; o += 4) {
      const T* w0 = W + o * I;
      const T* w1 = w0 + I;
      const T* w2 = w1 + I;
      const T* w3 = w2 + I;
      for (int64_t b = 0; b < B; ++b) {
        const float* xb = x + b * I;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t i = 0; i < I; i += 8) {
          const __m256 xv = _mm256_loadu_ps(xb + i);
          a0 = _mm256_fmadd_ps(load8(w0 + i), xv, a0);
          a1 = _mm256_fmadd_ps(load8(w1 + i), xv, a1);
          a2 = _mm256_fmadd_ps(load8(w2 + i), xv, a2);
          a3 = _mm256_fmadd_ps(load8(w3 + i), xv, a3);
        }
        float* yb = y + b * O + o;
        yb[0] = hsum(a0);
        yb[1] = hsum(a1);
        yb[2] = hsum(a2);
        yb[3] = hsum(a3);
        if (scale != nullptr) {
          for (int j = 0; j < 4; ++j) yb[j] *= scale[o + j];
        }
      }
    }
  }
#endif
  for (; o < r1; ++o) {
    const T* w = W + o * I;
    for (int64_t b = 0; b < B; ++b) {
      const float* xb = x + b * I;
      float acc = 0.f;
      for (int64_t i = 0; i < I; ++i) acc += to_float(w[i]) * xb[i];
      y[b * O + o] = scale != nullptr ? acc * scale[o] : acc;
    }
  }
}

// yb[o] = fma(w[R-1][o], x[R-1], ... fma(w[0][o], x[0], yb[o])) for o in [c0, c1): R rows of a
// transposed weight added to one output block, which is loaded and stored once (the FMAs in the
// order of the rows, so the same bits as R passes of one row), while the R rows pf are prefetched
// one cache line per row ahead of use (each line of pf[r] as the same columns of w[r] are read).
template <int R, typename T>
inline void event_group(const T* const* w, const float* x, const T* const* pf, float* yb, int64_t c0,
                        int64_t c1) {
  int64_t o = c0;
#ifdef NEURO_STEP_AVX2
  __m256 xv[R];
  for (int r = 0; r < R; ++r) xv[r] = _mm256_set1_ps(x[r]);
  constexpr int64_t kLine = 64 / sizeof(T);  // weights per cache line (16, 32 or 64)
  for (; o + kLine <= c1; o += kLine) {
    for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(pf[r] + o), _MM_HINT_T0);
    for (int64_t q = o; q < o + kLine; q += 8) {
      __m256 acc = _mm256_loadu_ps(yb + q);
      for (int r = 0; r < R; ++r) acc = _mm256_fmadd_ps(load8(w[r] + q), xv[r], acc);
      _mm256_storeu_ps(yb + q, acc);
    }
  }
  for (; o + 8 <= c1; o += 8) {
    __m256 acc = _mm256_loadu_ps(yb + o);
    for (int r = 0; r < R; ++r) acc = _mm256_fmadd_ps(load8(w[r] + o), xv[r], acc);
    _mm256_storeu_ps(yb + o, acc);
  }
#endif
  for (; o < c1; ++o) {
    float acc = yb[o];
    for (int r = 0; r < R; ++r) acc = std::fma(to_float(w[r][o]), x[r], acc);
    yb[o] = acc;
  }
}

// y[b, o] = sum over i with x[b, i] != 0 of (x[b, i] scale[i]) WT[i, o], for columns o in [c0, c1):
// the product with a transposed weight WT [I, O] that reads only the rows of the non-zero inputs
// (the squared ReLU of the channel mixing is zero for every negative pre-activation). Each output
// sums its terms in increasing i, one FMA per term (y = fma(w, x_i, y)), whatever the column split
// or grouping. The rows are taken kValueRows at a time (event_group: one load and store of the
// output block per group instead of per row), and the rows kPrefetchRows non-zero inputs ahead
// are prefetched while these are read (their order is data-dependent, so the hardware
// prefetcher cannot guess it; past the last row the last row is prefetched again).
template <typename T>
void event_rows(const T* WT, const float* scale, int64_t I, int64_t O, const float* x, int64_t b,
                const std::vector<int64_t>& nz, float* y, int64_t c0, int64_t c1) {
  float* yb = y + b * O;
  for (int64_t o = c0; o < c1; ++o) yb[o] = 0.f;
  const int64_t n = static_cast<int64_t>(nz.size());
  const T* w[kValueRows];
  const T* pf[kValueRows];
  float xs[kValueRows];
  auto row = [&](int64_t g, int r) {
    const int64_t i = nz[g + r];
    w[r] = WT + i * O;
    xs[r] = scale != nullptr ? x[b * I + i] * scale[i] : x[b * I + i];
    pf[r] = WT + nz[std::min(g + kPrefetchRows + r, n - 1)] * O;
  };
  int64_t g = 0;
  for (; g + kValueRows <= n; g += kValueRows) {
    for (int r = 0; r < kValueRows; ++r) row(g, r);
    event_group<kValueRows>(w, xs, pf, yb, c0, c1);
  }
  for (; g < n; ++g) {
    row(g, 0);
    event_group<1>(w, xs, pf, yb, c0, c1);
  }
}

// A weight matrix as the kernel reads it: its element type and, for int8, the per-row scales.
struct Mat {
  const void* p;
  at::ScalarType t;
  const float* scale;
};

template <typename F>
void dispatch(const Mat& m, F&& f) {
  switch (m.t) {
    case at::kFloat: f(static_cast<const float*>(m.p)); break;
    case at::kBFloat16: f(static_cast<const at::BFloat16*>(m.p)); break;
    default: f(static_cast<const int8_t*>(m.p)); break;
  }
}

// Several products that share no output, split over threads by rows (one parallel region).
struct Product {
  Mat W;
  int64_t O, I;
  const float* x;
  float* y;
};

void gemv_many(const std::vector<Product>& ps, int64_t B) {
  // tasks are groups of 4 rows (the kernel's unit), so the split never changes the arithmetic
  int64_t total = 0;
  for (const auto& p : ps) total += (p.O + 3) / 4;
  // grain: at least 32 groups (128 rows) per task, so a 512-row product is not cut into slivers
  at::parallel_for(0, total, 32, [&](int64_t lo, int64_t hi) {
    int64_t base = 0;
    for (const auto& p : ps) {
      const int64_t n = (p.O + 3) / 4;
      const int64_t a = std::max(lo, base), e = std::min(hi, base + n);
      if (a < e) {
        dispatch(p.W, [&](auto* W) {
          gemv_rows(W, p.W.scale, p.I, p.x, B, p.O, p.y, (a - base) * 4, std::min((e - base) * 4, p.O));
        });
      }
      base += n;
    }
  });
}

// y [B, O] = x [B, I] W^T for a mostly-zero x, W given transposed (WT [I, O]): event_rows per row
// of the batch, the columns split over threads in blocks of 64.
void event_product(const Mat& WT, int64_t I, int64_t O, const float* x, int64_t B, float* y) {
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> nz;
    nz.reserve(I);
    for (int64_t i = 0; i < I; ++i) {
      if (x[b * I + i] != 0.f) nz.push_back(i);
    }
    const int64_t blocks = (O + 63) / 64;
    at::parallel_for(0, blocks, 2, [&](int64_t lo, int64_t hi) {
      dispatch(WT, [&](auto* W) {
        event_rows(W, WT.scale, I, O, x, b, nz, y, lo * 64, std::min(hi * 64, O));
      });
    });
  }
}

// (e^{x1 - m}, e^{x2 - m}) with m = std::max(x1, x2), using one exponential (wkv.cpp's exp_pair):
// the maximum's term is e^0 = 1 exactly and the other is e^{-(the difference)} (x1 - x2 = -(x2 - x1)
// exactly), so for finite inputs this gives the same bits as two calls of std::exp.  Returns m.
inline double exp_pair(double x1, double x2, double& e1, double& e2) {
  const bool first = !(x1 < x2);  // std::max(x1, x2) == x1
  const double e = std::exp(first ? x2 - x1 : x1 - x2);
  e1 = first ? 1.0 : e;
  e2 = first ? e : 1.0;
  return first ? x1 : x2;
}

// out[b] = LN(x[b]) * g + beta, per row of C (mean and biased variance, eps 1e-5).
void layer_norm(const float* x, const float* g, const float* bta, float* out, int64_t B, int64_t C) {
  for (int64_t b = 0; b < B; ++b) {
    const float* xb = x + b * C;
    double mean = 0.0;
    for (int64_t c = 0; c < C; ++c) mean += xb[c];
    mean /= static_cast<double>(C);
    double var = 0.0;
    for (int64_t c = 0; c < C; ++c) {
      const double d = xb[c] - mean;
      var += d * d;
    }
    var /= static_cast<double>(C);
    const float m = static_cast<float>(mean);
    const float rstd = static_cast<float>(1.0 / std::sqrt(var + 1e-5));
    for (int64_t c = 0; c < C; ++c) out[b * C + c] = (xb[c] - m) * rstd * g[c] + bta[c];
  }
}

inline float mix(float a, float s, float mu) { return a * mu + s * (1.f - mu); }
inline float sigmoid(float z) { return 1.f / (1.f + std::exp(-z)); }

const float* f32(const at::Tensor& t, int64_t numel, const char* what) {
  TORCH_CHECK(t.is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous() && t.numel() == numel,
              "spikegpt step: ", what, " must be a contiguous float32 CPU tensor of ", numel,
              " elements");
  return t.data_ptr<float>();
}

// A weight matrix [rows, cols]: float32, bfloat16, or int8 with float32 scales [rows] (an empty
// scale tensor for the other two).
Mat mat(const at::Tensor& t, const at::Tensor& scale, int64_t rows, int64_t cols, const char* what) {
  const auto st = t.scalar_type();
  TORCH_CHECK(t.is_cpu() && t.is_contiguous() && t.numel() == rows * cols &&
                  (st == at::kFloat || st == at::kBFloat16 || st == at::kChar),
              "spikegpt step: ", what, " must be a contiguous float32, bfloat16 or int8 CPU tensor of ",
              rows * cols, " elements");
  if (st == at::kChar) {
    return {t.data_ptr(), st, f32(scale, rows, "an int8 weight's scales")};
  }
  TORCH_CHECK(scale.numel() == 0, "spikegpt step: ", what, " is not int8 but has scales");
  return {t.data_ptr(), st, nullptr};
}

std::vector<at::Tensor> step(const at::Tensor& x_in, at::TensorList weights_in, at::TensorList scales,
                             at::TensorList state_in, double beta, double threshold, bool spiking) {
  // contiguous views (no copy when they already are); the state's autograd history is ignored
  std::vector<at::Tensor> weights, state;
  weights.reserve(weights_in.size());
  state.reserve(state_in.size());
  for (const auto& t : weights_in) weights.push_back(t.contiguous());
  for (const auto& t : state_in) state.push_back(t.contiguous());
  TORCH_CHECK(x_in.dim() == 2, "spikegpt step: x must be [B, C]");
  const int64_t B = x_in.size(0), C = x_in.size(1);
  TORCH_CHECK(weights.size() >= 3 && (weights.size() - 3) % kPerBlock == 0,
              "spikegpt step: weights must hold 18 tensors per block and 3 for the head");
  const int64_t L = static_cast<int64_t>((weights.size() - 3) / kPerBlock);
  TORCH_CHECK(static_cast<int64_t>(state.size()) == L * kStatePerBlock,
              "spikegpt step: state must hold 7 tensors per block");
  TORCH_CHECK(static_cast<int64_t>(scales.size()) == L * kMatsPerBlock + 1,
              "spikegpt step: scales must hold 7 tensors per block and 1 for the head");
  const int64_t H = weights[15].size(0);
  const int64_t V = weights[weights.size() - 1].size(0);
  const float alpha = static_cast<float>(1.0 - beta);
  const float thr = static_cast<float>(threshold);

  auto opt = x_in.options();
  at::Tensor x = x_in.contiguous().to(at::kFloat).clone();
  float* xp = x.data_ptr<float>();
  std::vector<at::Tensor> out_state;
  out_state.reserve(state.size());
  std::vector<float> a(B * C), xk(B * C), xv(B * C), xr(B * C), k(B * C), v(B * C), r(B * C),
      cur(B * C), hid(B * H);

  for (int64_t l = 0; l < L; ++l) {
    const at::Tensor* w = weights.data() + l * kPerBlock;
    const at::Tensor* s = state.data() + l * kStatePerBlock;
    const float *ln1w = f32(w[0], C, "ln1.weight"), *ln1b = f32(w[1], C, "ln1.bias");
    const float *ln2w = f32(w[2], C, "ln2.weight"), *ln2b = f32(w[3], C, "ln2.bias");
    const float *wd = f32(w[4], C, "-exp(time_decay)"), *u = f32(w[5], C, "time_first");
    const float *mk = f32(w[6], C, "att.time_mix_k"), *mv = f32(w[7], C, "att.time_mix_v");
    const float* mr = f32(w[8], C, "att.time_mix_r");
    const at::Tensor* q = scales.data() + l * kMatsPerBlock;
    const Mat Wk = mat(w[9], q[0], C, C, "att.key"), Wv = mat(w[10], q[1], C, C, "att.value");
    const Mat Wr = mat(w[11], q[2], C, C, "att.receptance"), Wo = mat(w[12], q[3], C, C, "att.output");
    const float *nk = f32(w[13], C, "ffn.time_mix_k"), *nr = f32(w[14], C, "ffn.time_mix_r");
    const Mat Fk = mat(w[15], q[4], H, C, "ffn.key");
    const Mat Fr = mat(w[16], q[5], C, C, "ffn.receptance");
    const Mat FvT = mat(w[17], q[6], H, C, "ffn.value^T");
    const float* sh_att = f32(s[0], B * C, "att_shift");
    for (int i = 1; i < 4; ++i) {
      TORCH_CHECK(s[i].is_cpu() && s[i].scalar_type() == at::kDouble && s[i].is_contiguous() &&
                      s[i].numel() == B * C,
                  "spikegpt step: the WKV state must be contiguous float64 [B, C]");
    }
    const double *a0 = s[1].data_ptr<double>(), *b0 = s[2].data_ptr<double>(),
                 *p0 = s[3].data_ptr<double>();
    const float* v_att = f32(s[4], B * C, "att_v");
    const float* sh_ffn = f32(s[5], B * C, "ffn_shift");
    const float* v_ffn = f32(s[6], B * C, "ffn_v");

    at::Tensor n_att_shift = at::empty({B, C}, opt), n_ffn_shift = at::empty({B, C}, opt);
    at::Tensor na = at::empty({B, C}, s[1].options()), nb = at::empty_like(na),
               np = at::empty_like(na);
    at::Tensor n_att_v = at::empty({B, C}, opt), n_ffn_v = at::empty({B, C}, opt);

    // time mixing
    float* as = n_att_shift.data_ptr<float>();
    layer_norm(xp, ln1w, ln1b, as, B, C);
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t c = 0; c < C; ++c) {
        const int64_t j = b * C + c;
        xk[j] = mix(as[j], sh_att[j], mk[c]);
        xv[j] = mix(as[j], sh_att[j], mv[c]);
        xr[j] = mix(as[j], sh_att[j], mr[c]);
      }
    }
    gemv_many({{Wk, C, C, xk.data(), k.data()}, {Wv, C, C, xv.data(), v.data()},
               {Wr, C, C, xr.data(), r.data()}}, B);
    double *pa = na.data_ptr<double>(), *pb = nb.data_ptr<double>(), *pp = np.data_ptr<double>();
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t c = 0; c < C; ++c) {
        const int64_t j = b * C + c;
        const double kt = k[j], vt = v[j], uc = u[c], wc = wd[c];
        double e1, e2;
        exp_pair(p0[j], uc + kt, e1, e2);
        const float y = static_cast<float>((e1 * a0[j] + e2 * vt) / (e1 * b0[j] + e2));
        const double m = exp_pair(wc + p0[j], kt, e1, e2);
        pa[j] = e1 * a0[j] + e2 * vt;
        pb[j] = e1 * b0[j] + e2;
        pp[j] = m;
        xk[j] = sigmoid(r[j]) * y;  // reuse xk for r * y
      }
    }
    gemv_many({{Wo, C, C, xk.data(), cur.data()}}, B);
    float* nva = n_att_v.data_ptr<float>();
    for (int64_t j = 0; j < B * C; ++j) {
      if (spiking) {
        const float h = v_att[j] + (cur[j] - v_att[j]) * alpha;
        const bool fire = h - thr >= 0.f;
        nva[j] = fire ? 0.f : h;
        xp[j] += fire ? 1.f : 0.f;
      } else {
        nva[j] = v_att[j];
        xp[j] += cur[j];
      }
    }
    // channel mixing
    float* fs = n_ffn_shift.data_ptr<float>();
    layer_norm(xp, ln2w, ln2b, fs, B, C);
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t c = 0; c < C; ++c) {
        const int64_t j = b * C + c;
        xk[j] = mix(fs[j], sh_ffn[j], nk[c]);
        xr[j] = mix(fs[j], sh_ffn[j], nr[c]);
      }
    }
    gemv_many({{Fk, H, C, xk.data(), hid.data()}, {Fr, C, C, xr.data(), r.data()}}, B);
    for (int64_t j = 0; j < B * H; ++j) {
      const float z = hid[j] > 0.f ? hid[j] : 0.f;
      hid[j] = z * z;
    }
    event_product(FvT, H, C, hid.data(), B, v.data());
    float* nvf = n_ffn_v.data_ptr<float>();
    for (int64_t j = 0; j < B * C; ++j) {
      const float c_in = sigmoid(r[j]) * v[j];
      if (spiking) {
        const float h = v_ffn[j] + (c_in - v_ffn[j]) * alpha;
        const bool fire = h - thr >= 0.f;
        nvf[j] = fire ? 0.f : h;
        xp[j] += fire ? 1.f : 0.f;
      } else {
        nvf[j] = v_ffn[j];
        xp[j] += c_in;
      }
    }
    out_state.insert(out_state.end(), {n_att_shift, na, nb, np, n_att_v, n_ffn_shift, n_ffn_v});
  }
  const size_t hb = weights.size() - 3;
  const float* lnw = f32(weights[hb], C, "ln_out.weight");
  const float* lnb = f32(weights[hb + 1], C, "ln_out.bias");
  const Mat Wh = mat(weights[hb + 2], scales[scales.size() - 1], V, C, "head.weight");
  layer_norm(xp, lnw, lnb, a.data(), B, C);
  at::Tensor logits = at::empty({B, V}, opt);
  gemv_many({{Wh, V, C, a.data(), logits.data_ptr<float>()}}, B);
  std::vector<at::Tensor> result{logits, x};
  result.insert(result.end(), out_state.begin(), out_state.end());
  return result;
}

}  // namespace

TORCH_LIBRARY(neuro_spikegpt, m) {
  m.def("step(Tensor x, Tensor[] weights, Tensor[] scales, Tensor[] state, float beta, float threshold, "
        "bool spiking) -> Tensor[]",
        &step);
}
