// WKV of SpikeGPT / RWKV-4 (neuro/models/spikegpt/wkv.py): fused forward and backward over time.
//
// Per batch row b and channel c, with w = -exp(time_decay) < 0 and u = time_first:
//
//   y_t = (S_t + e^{u + k_t} v_t) / (Z_t + e^{u + k_t}),
//   S_{t+1} = e^w S_t + e^{k_t} v_t,   Z_{t+1} = e^w Z_t + e^{k_t}     (S_0, Z_0 from the state)
//
// S and Z are held in max-subtracted form: S = a e^p, Z = b e^p, so no exponential of an
// unbounded argument is ever taken (k = +-100 works in float32).  A fresh state is
// (a, b, p) = (0, 0, -1e38).
//
// Backward (derived in wkv.py's docstring), with D_t = Z_t + e^{u+k_t} = e^{m_t} / z_t:
//   dL/dv_i = g_i beta_i + e^{k_i} R_i,     dL/dk_i = g_i beta_i (v_i - y_i) + e^{k_i} (v_i R_i - Q_i)
//   R_i = sum_{t>i} g_t e^{(t-1-i) w} / D_t,  Q_i = the same with g_t y_t,  beta_t = e^{u+k_t}/D_t
//   dL/du = sum_t g_t beta_t (v_t - y_t),    dL/dw = sum_t g_t (dS_t/dw - y_t dZ_t/dw) / D_t
// R and Q run backwards in time in max-subtracted form too.  The state is a constant for the
// gradient (no gradient flows into it).
//
// Layout: k, v, y, gy time-first [T, B, C] contiguous; w, u [C]; the state a, b, p [B, C] float64
// (so a stream of single steps equals one pass over the sequence bit for bit).  Arithmetic in
// double for float32 inputs as well (the recurrence is not where the time goes).  Registered as
// torch.ops.neuro_wkv.*; built on first use by neuro/kernels/extension.py.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

namespace {

constexpr double kFresh = -1e38;

// (e^{x1 - m}, e^{x2 - m}) with m = std::max(x1, x2), using one exponential: the term that is the
// maximum is e^0 = 1 exactly, and the other is e^{-(the difference)} (x1 - x2 = -(x2 - x1) exactly),
// so this gives the same bits as two calls of std::exp.  Returns m.
inline double exp_pair(double x1, double x2, double& e1, double& e2) {
  const bool first = !(x1 < x2);  // std::max(x1, x2) == x1 (branch-free selects below)
  const double e = std::exp(first ? x2 - x1 : x1 - x2);
  e1 = first ? 1.0 : e;
  e2 = first ? e : 1.0;
  return first ? x1 : x2;
}

void check(const at::Tensor& w, const at::Tensor& u, const at::Tensor& k, const at::Tensor& v,
           const at::Tensor& a, const at::Tensor& b, const at::Tensor& p) {
  TORCH_CHECK(k.dim() == 3 && v.sizes() == k.sizes(), "wkv: k and v must both be [T, B, C]");
  const auto C = k.size(2);
  TORCH_CHECK(w.dim() == 1 && w.size(0) == C && u.sizes() == w.sizes(), "wkv: w, u must be [C]");
  for (const auto* s : {&a, &b, &p}) {
    TORCH_CHECK(s->dim() == 2 && s->size(0) == k.size(1) && s->size(1) == C,
                "wkv: state tensors must be [B, C]");
    TORCH_CHECK(s->is_cpu() && s->is_contiguous() && s->scalar_type() == at::kDouble,
                "wkv: state tensors must be contiguous float64 CPU tensors");
  }
  for (const auto* t : {&w, &u, &k, &v}) {
    TORCH_CHECK(t->is_cpu() && t->is_contiguous() && t->scalar_type() == k.scalar_type(),
                "wkv: all tensors must be contiguous CPU tensors of one dtype");
  }
}

template <typename F>
void forward_impl(const F* w, const F* u, const F* k, const F* v, const double* a0,
                  const double* b0, const double* p0, F* y, double* a1, double* b1, double* p1, int64_t T, int64_t B, int64_t C) {
  at::parallel_for(0, B, 1, [&](int64_t lo, int64_t hi) {
    std::vector<double> sa(C), sb(C), sp(C);
    for (int64_t bi = lo; bi < hi; ++bi) {
      for (int64_t c = 0; c < C; ++c) {
        sa[c] = a0[bi * C + c];
        sb[c] = b0[bi * C + c];
        sp[c] = p0[bi * C + c];
      }
      for (int64_t t = 0; t < T; ++t) {
        const int64_t o = (t * B + bi) * C;
        for (int64_t c = 0; c < C; ++c) {
          const double kt = k[o + c], vt = v[o + c], uc = u[c], wc = w[c];
          double e1, e2;
          exp_pair(sp[c], uc + kt, e1, e2);
          y[o + c] = static_cast<F>((e1 * sa[c] + e2 * vt) / (e1 * sb[c] + e2));
          const double m = exp_pair(wc + sp[c], kt, e1, e2);
          sa[c] = e1 * sa[c] + e2 * vt;
          sb[c] = e1 * sb[c] + e2;
          sp[c] = m;
        }
      }
      for (int64_t c = 0; c < C; ++c) {
        a1[bi * C + c] = sa[c];
        b1[bi * C + c] = sb[c];
        p1[bi * C + c] = sp[c];
      }
    }
  });
}

template <typename F>
void backward_impl(const F* w, const F* u, const F* k, const F* v, const double* a0,
                   const double* b0, const double* p0, const F* gy, double* gw_b, double* gu_b, F* gk, F* gv, int64_t T,
                   int64_t B, int64_t C) {
  at::parallel_for(0, B, 1, [&](int64_t lo, int64_t hi) {
    std::vector<double> sa(C), sb(C), sp(C), da(C), db(C);
    // y_t, z_t = e^{m_t} / D_t, m_t, e^{u + k_t - m_t}
    std::vector<double> ys(T * C), zs(T * C), ms(T * C), es(T * C);
    for (int64_t bi = lo; bi < hi; ++bi) {
      double* gw = gw_b + bi * C;
      double* gu = gu_b + bi * C;
      for (int64_t c = 0; c < C; ++c) {
        sa[c] = a0[bi * C + c];
        sb[c] = b0[bi * C + c];
        sp[c] = p0[bi * C + c];
        da[c] = db[c] = 0.0;
        gw[c] = gu[c] = 0.0;
      }
      for (int64_t t = 0; t < T; ++t) {  // forward again, with dS/dw and dZ/dw (same scale)
        const int64_t o = (t * B + bi) * C;
        for (int64_t c = 0; c < C; ++c) {
          const double kt = k[o + c], vt = v[o + c], uc = u[c], wc = w[c], g = gy[o + c];
          double e1, e2;
          double m = exp_pair(sp[c], uc + kt, e1, e2);
          const double z = 1.0 / (e1 * sb[c] + e2);
          const double yt = (e1 * sa[c] + e2 * vt) * z;
          ys[t * C + c] = yt;
          zs[t * C + c] = z;
          ms[t * C + c] = m;
          es[t * C + c] = e2;
          gw[c] += g * (da[c] - db[c] * yt) * z * e1;
          gu[c] += g * (vt - yt) * e2 * z;
          m = exp_pair(wc + sp[c], kt, e1, e2);
          da[c] = e1 * (sa[c] + da[c]);
          db[c] = e1 * (sb[c] + db[c]);
          sa[c] = e1 * sa[c] + e2 * vt;
          sb[c] = e1 * sb[c] + e2;
          sp[c] = m;
        }
      }
      // backwards: R = r e^s, Q = q e^s (sa, sb, sp reused as r, q, s)
      for (int64_t c = 0; c < C; ++c) {
        sa[c] = sb[c] = 0.0;
        sp[c] = kFresh;
      }
      for (int64_t t = T - 1; t >= 0; --t) {
        const int64_t o = (t * B + bi) * C;
        for (int64_t c = 0; c < C; ++c) {
          const double kt = k[o + c], vt = v[o + c], uc = u[c], wc = w[c], g = gy[o + c];
          const double yt = ys[t * C + c], z = zs[t * C + c], m = ms[t * C + c];
          const double gb = g * z * es[t * C + c];  // g_t beta_t
          const double ek = std::exp(kt + sp[c]);
          gk[o + c] = static_cast<F>(gb * (vt - yt) + ek * (vt * sa[c] - sb[c]));
          gv[o + c] = static_cast<F>(gb + ek * sa[c]);
          double e1, e2;
          const double ns = exp_pair(wc + sp[c], -m, e1, e2);
          e2 *= g * z;
          sa[c] = e1 * sa[c] + e2;
          sb[c] = e1 * sb[c] + e2 * yt;
          sp[c] = ns;
        }
      }
    }
  });
}

std::vector<at::Tensor> wkv_forward(const at::Tensor& w, const at::Tensor& u, const at::Tensor& k,
                                    const at::Tensor& v, const at::Tensor& a, const at::Tensor& b,
                                    const at::Tensor& p) {
  check(w, u, k, v, a, b, p);
  const auto T = k.size(0), B = k.size(1), C = k.size(2);
  auto y = at::empty_like(k);
  auto a1 = at::empty_like(a), b1 = at::empty_like(b), p1 = at::empty_like(p);
  AT_DISPATCH_FLOATING_TYPES(k.scalar_type(), "wkv_forward", [&] {
    forward_impl<scalar_t>(w.data_ptr<scalar_t>(), u.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(),
                           v.data_ptr<scalar_t>(), a.data_ptr<double>(), b.data_ptr<double>(),
                           p.data_ptr<double>(), y.data_ptr<scalar_t>(), a1.data_ptr<double>(),
                           b1.data_ptr<double>(), p1.data_ptr<double>(), T, B, C);
  });
  return {y, a1, b1, p1};
}

// Returns (dL/dw [C], dL/du [C], dL/dk, dL/dv), the first two summed over the batch.
std::vector<at::Tensor> wkv_backward(const at::Tensor& w, const at::Tensor& u, const at::Tensor& k,
                                     const at::Tensor& v, const at::Tensor& a, const at::Tensor& b,
                                     const at::Tensor& p, const at::Tensor& gy) {
  check(w, u, k, v, a, b, p);
  TORCH_CHECK(gy.sizes() == k.sizes() && gy.is_contiguous() && gy.scalar_type() == k.scalar_type(),
              "wkv_backward: gy must be contiguous, shaped and typed like k");
  const auto T = k.size(0), B = k.size(1), C = k.size(2);
  auto opts = k.options().dtype(at::kDouble);
  auto gw = at::zeros({B, C}, opts), gu = at::zeros({B, C}, opts);
  auto gk = at::empty_like(k), gv = at::empty_like(v);
  AT_DISPATCH_FLOATING_TYPES(k.scalar_type(), "wkv_backward", [&] {
    backward_impl<scalar_t>(w.data_ptr<scalar_t>(), u.data_ptr<scalar_t>(),
                            k.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(),
                            a.data_ptr<double>(), b.data_ptr<double>(),
                            p.data_ptr<double>(), gy.data_ptr<scalar_t>(),
                            gw.data_ptr<double>(), gu.data_ptr<double>(),
                            gk.data_ptr<scalar_t>(), gv.data_ptr<scalar_t>(), T, B, C);
  });
  return {gw.sum(0).to(k.scalar_type()), gu.sum(0).to(k.scalar_type()), gk, gv};
}

}  // namespace

TORCH_LIBRARY(neuro_wkv, m) {
  m.def("wkv_forward", &wkv_forward);
  m.def("wkv_backward", &wkv_backward);
}
