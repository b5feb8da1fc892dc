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
// product, 4 rows at a time with AVX2 FMA where available), split over threads by rows.  The
// element-wise work is fused per row; the WKV arithmetic is wkv.cpp's forward step, operation for
// operation (float64), so a stream of steps gives the same WKV state as the parallel pass.
//
// Weights (per block, 18 tensors, in this order): ln1.w, ln1.b, ln2.w, ln2.b, att.w (= -exp(time_decay),
// float32 [C]), att.time_first [C], att.mu_k, mu_v, mu_r [C], att.key, value, receptance, output [C, C],
// ffn.mu_k, mu_r [C], ffn.key [H, C], ffn.receptance [C, C], ffn.value [C, H]; then ln_out.w, ln_out.b,
// head [V, C].  State (per block, 7 tensors [B, C]): att_shift, a, b, p (float64), att_v, ffn_shift,
// ffn_v.  Returns logits [B, V], the residual x [B, C] and the new state (new tensors; the inputs are
// not changed).  Registered as torch.ops.neuro_spikegpt.step; built by neuro/kernels/extension.py.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define NEURO_STEP_AVX2 1
#endif

namespace {

constexpr int64_t kPerBlock = 18;
constexpr int64_t kStatePerBlock = 7;

#ifdef NEURO_STEP_AVX2
inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_hadd_ps(lo, lo);
  lo = _mm_hadd_ps(lo, lo);
  return _mm_cvtss_f32(lo);
}
#endif

// y[b, o] = sum_i W[o, i] x[b, i] for rows o in [r0, r1); W [O, I] row-major, x [B, I], y [B, O].
void gemv_rows(const float* W, int64_t I, const float* x, int64_t B, int64_t O, float* y, int64_t r0,
               int64_t r1) {
  int64_t o = r0;
#ifdef NEURO_STEP_AVX2
  if (I % 8 == 0) {
    for (; o + 4 <= r1; o += 4) {
      const float* w0 = W + o * I;
      const float* w1 = w0 + I;
      const float* w2 = w1 + I;
      const float* w3 = w2 + I;
      for (int64_t b = 0; b < B; ++b) {
        const float* xb = x + b * I;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t i = 0; i < I; i += 8) {
          const __m256 xv = _mm256_loadu_ps(xb + i);
          a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + i), xv, a0);
          a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + i), xv, a1);
          a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + i), xv, a2);
          a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + i), xv, a3);
        }
        float* yb = y + b * O + o;
        yb[0] = hsum(a0);
        yb[1] = hsum(a1);
        yb[2] = hsum(a2);
        yb[3] = hsum(a3);
      }
    }
  }
#endif
  for (; o < r1; ++o) {
    const float* w = W + o * I;
    for (int64_t b = 0; b < B; ++b) {
      const float* xb = x + b * I;
      float acc = 0.f;
      for (int64_t i = 0; i < I; ++i) acc += w[i] * xb[i];
      y[b * O + o] = acc;
    }
  }
}

// Several products that share no output, split over threads by rows (one parallel region).
struct Product {
  const float* W;
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
      if (a < e) gemv_rows(p.W, p.I, p.x, B, p.O, p.y, (a - base) * 4, std::min((e - base) * 4, p.O));
      base += n;
    }
  });
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

std::vector<at::Tensor> step(const at::Tensor& x_in, at::TensorList weights_in,
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
    const float *Wk = f32(w[9], C * C, "att.key"), *Wv = f32(w[10], C * C, "att.value");
    const float *Wr = f32(w[11], C * C, "att.receptance"), *Wo = f32(w[12], C * C, "att.output");
    const float *nk = f32(w[13], C, "ffn.time_mix_k"), *nr = f32(w[14], C, "ffn.time_mix_r");
    const float* Fk = f32(w[15], H * C, "ffn.key");
    const float* Fr = f32(w[16], C * C, "ffn.receptance");
    const float* Fv = f32(w[17], C * H, "ffn.value");
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
        double m = std::max(p0[j], uc + kt);
        double e1 = std::exp(p0[j] - m), e2 = std::exp(uc + kt - m);
        const float y = static_cast<float>((e1 * a0[j] + e2 * vt) / (e1 * b0[j] + e2));
        m = std::max(wc + p0[j], kt);
        e1 = std::exp(wc + p0[j] - m);
        e2 = std::exp(kt - m);
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
    gemv_many({{Fv, C, H, hid.data(), v.data()}}, B);
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
  const float* Wh = f32(weights[hb + 2], V * C, "head.weight");
  layer_norm(xp, lnw, lnb, a.data(), B, C);
  at::Tensor logits = at::empty({B, V}, opt);
  gemv_many({{Wh, V, C, a.data(), logits.data_ptr<float>()}}, B);
  std::vector<at::Tensor> result{logits, x};
  result.insert(result.end(), out_state.begin(), out_state.end());
  return result;
}

}  // namespace

TORCH_LIBRARY(neuro_spikegpt, m) {
  m.def("step(Tensor x, Tensor[] weights, Tensor[] state, float beta, float threshold, bool spiking) -> Tensor[]",
        &step);
}
