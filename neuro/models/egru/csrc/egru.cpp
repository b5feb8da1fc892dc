// Event-driven fused EGRU kernels (CPU; float32 and float64), registered as torch.ops.neuro_egru.
//
// One layer over T steps, batch B, H units, gate order [z | r | g] along 3H (EvNN layout):
//   hb = br + sum_{i : y[t-1,b,i] != 0} y[t-1,b,i] * R[i, :]      only the rows of event units
//   z = sigmoid(ax_z + hb_z),  r = sigmoid(ax_r + hb_r),  g = tanh(ax_g + r * hb_g)
//   u = k * (z * c[t-1] + (1 - z) * g) + (1 - k) * c[t-1]          k: zoneout keep (mask or 1 - p)
//   o = H(u - theta) (H(0) = 0),  y = o * u,  c = u - o * theta
// `ax = x W + bx` is computed outside (one GEMM). With `csr` the rows are visited through a CSR
// index of the non-zeros of R built here (pruned or dropped-out weights are never read).
//
// Backward (same sparsity, in reverse time): the pseudo-derivative
//   do/dv = damp * max(0, 1 - supp |v|),  v = u - theta
// is evaluated only where |v| < 1/supp; dR accumulates only over the event rows of y[t-1]; the
// gradient dy[t-1] = dhb R^T is computed only for units that need it at step t-1 (an event there,
// or |v| < 1/supp, else it multiplies zero).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <memory>
#include <utility>
#include <mutex>
#include <thread>
#include <tuple>
#include <vector>

namespace {

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

// CSR index of the non-zeros of a dense row-major [H, N] matrix.
template <class S>
struct Csr {
  std::vector<int64_t> crow;
  std::vector<int32_t> col;
  std::vector<S> val;
  Csr(const S* R, int64_t H, int64_t N) : crow(H + 1, 0) {
    for (int64_t i = 0; i < H; ++i) {
      for (int64_t j = 0; j < N; ++j) {
        const S w = R[i * N + j];
        if (w != S(0)) {
          col.push_back(static_cast<int32_t>(j));
          val.push_back(w);
        }
      }
      crow[i + 1] = static_cast<int64_t>(col.size());
    }
  }
};

template <class S>
inline S sigmoid(S x) {
  return S(1) / (S(1) + std::exp(-x));
}

void check(const at::Tensor& t, const at::Tensor& like, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), "neuro_egru: ", name, " must be a CPU tensor");
  TORCH_CHECK(t.scalar_type() == like.scalar_type(), "neuro_egru: ", name, " has dtype ",
              t.scalar_type(), ", expected ", like.scalar_type());
  TORCH_CHECK(t.is_contiguous(), "neuro_egru: ", name, " must be contiguous");
}

template <class S>
void forward_impl(const at::Tensor& ax, const at::Tensor& R, const at::Tensor& br,
                  const at::Tensor& theta, const at::Tensor& c0, const at::Tensor& y0,
                  const at::Tensor& keep, double keep_scalar, bool csr, at::Tensor& y,
                  at::Tensor& c, at::Tensor& o, at::Tensor& cache, int64_t& rows_read) {
  const int64_t T = ax.size(0), B = ax.size(1), H = R.size(0), N = 3 * H;
  const S* pax = ax.data_ptr<S>();
  const S* pR = R.data_ptr<S>();
  const S* pbr = br.data_ptr<S>();
  const S* pth = theta.data_ptr<S>();
  const S* pc0 = c0.data_ptr<S>();
  const S* py0 = y0.data_ptr<S>();
  const S* pk = keep.numel() ? keep.data_ptr<S>() : nullptr;
  const S ks = static_cast<S>(keep_scalar);
  S* py = y.data_ptr<S>();
  S* pc = c.data_ptr<S>();
  S* po = o.data_ptr<S>();
  S* pz = cache.data_ptr<S>();              // [5, T, B, H]: z, r, g, hb_g, u
  const int64_t TBH = T * B * H;
  S* pr = pz + TBH;
  S* pg = pr + TBH;
  S* phn = pg + TBH;
  S* pu = phn + TBH;
  std::unique_ptr<Csr<S>> idx;
  if (csr) idx.reset(new Csr<S>(pR, H, N));
  std::vector<int64_t> reads(B, 0);
  for (int64_t t = 0; t < T; ++t) {
    const S* yprev = t ? py + (t - 1) * B * H : py0;
    const S* cprev = t ? pc + (t - 1) * B * H : pc0;
    parallel_for(0, B, 1, [&](int64_t lo, int64_t hi) {
      std::vector<S> hb(N);
      for (int64_t b = lo; b < hi; ++b) {
        std::copy(pbr, pbr + N, hb.begin());
        const S* yb = yprev + b * H;
        int64_t nread = 0;
        for (int64_t i = 0; i < H; ++i) {
          const S yi = yb[i];
          if (yi == S(0)) continue;
          ++nread;
          if (csr) {
            for (int64_t p = idx->crow[i]; p < idx->crow[i + 1]; ++p) hb[idx->col[p]] += yi * idx->val[p];
          } else {
            const S* Ri = pR + i * N;
            for (int64_t j = 0; j < N; ++j) hb[j] += yi * Ri[j];
          }
        }
        reads[b] += nread;
        const int64_t off = (t * B + b) * H;
        const S* a = pax + (t * B + b) * N;
        const S* cb = cprev + b * H;
        for (int64_t h = 0; h < H; ++h) {
          const S z = sigmoid(a[h] + hb[h]);
          const S r = sigmoid(a[H + h] + hb[H + h]);
          const S g = std::tanh(a[2 * H + h] + r * hb[2 * H + h]);
          S u = z * cb[h] + (S(1) - z) * g;
          const S k = pk ? pk[off + h] : ks;
          if (k != S(1)) u = (u - cb[h]) * k + cb[h];
          const S ev = (u - pth[h]) > S(0) ? S(1) : S(0);
          pz[off + h] = z;
          pr[off + h] = r;
          pg[off + h] = g;
          phn[off + h] = hb[2 * H + h];
          pu[off + h] = u;
          po[off + h] = ev;
          py[off + h] = ev * u;
          pc[off + h] = u - ev * pth[h];
        }
      }
    });
  }
  rows_read = 0;
  for (auto v : reads) rows_read += v;
}

// returns y, c, o [T, B, H], cache [5, T, B, H] and stats [1] (event rows of R read)
std::vector<at::Tensor> egru_forward(at::Tensor ax, at::Tensor R, at::Tensor br, at::Tensor theta,
                                     at::Tensor c0, at::Tensor y0, at::Tensor keep,
                                     double keep_scalar, bool csr) {
  TORCH_CHECK(ax.dim() == 3 && R.dim() == 2 && R.size(1) == 3 * R.size(0) && ax.size(2) == R.size(1),
              "neuro_egru: ax must be [T, B, 3H] and R [H, 3H]");
  const std::vector<std::pair<const at::Tensor*, const char*>> args{
      {&R, "R"}, {&br, "br"}, {&theta, "theta"}, {&c0, "c0"}, {&y0, "y0"}};
  for (const auto& [t, n] : args) check(*t, ax, n);
  check(ax, ax, "ax");
  if (keep.numel()) check(keep, ax, "keep");
  const int64_t T = ax.size(0), B = ax.size(1), H = R.size(0);
  auto y = at::empty({T, B, H}, ax.options());
  auto c = at::empty({T, B, H}, ax.options());
  auto o = at::empty({T, B, H}, ax.options());
  auto cache = at::empty({5, T, B, H}, ax.options());
  int64_t rows = 0;
  AT_DISPATCH_FLOATING_TYPES(ax.scalar_type(), "egru_forward", [&] {
    forward_impl<scalar_t>(ax, R, br, theta, c0, y0, keep, keep_scalar, csr, y, c, o, cache, rows);
  });
  auto stats = at::tensor({rows}, at::kLong);
  return {y, c, o, cache, stats};
}

template <class S>
void backward_impl(const at::Tensor& R, const at::Tensor& theta, const at::Tensor& c0,
                   const at::Tensor& y0, const at::Tensor& keep, double keep_scalar,
                   const at::Tensor& y, const at::Tensor& c, const at::Tensor& o,
                   const at::Tensor& cache, const at::Tensor& gy, const at::Tensor& gc,
                   const at::Tensor& go, double damp_d, double supp_d, bool csr, bool need_y0,
                   at::Tensor& dax, at::Tensor& dhb, at::Tensor& dR, at::Tensor& dth,
                   at::Tensor& dc0, at::Tensor& dy0, int64_t& surrogate_skipped,
                   int64_t& dy_computed) {
  const int64_t T = y.size(0), B = y.size(1), H = R.size(0), N = 3 * H;
  const int64_t TBH = T * B * H;
  const S* pR = R.data_ptr<S>();
  const S* pth = theta.data_ptr<S>();
  const S* pc0 = c0.data_ptr<S>();
  const S* py0 = y0.data_ptr<S>();
  const S* pk = keep.numel() ? keep.data_ptr<S>() : nullptr;
  const S ks = static_cast<S>(keep_scalar);
  const S* py = y.data_ptr<S>();
  const S* pc = c.data_ptr<S>();
  const S* po = o.data_ptr<S>();
  const S* pz = cache.data_ptr<S>();
  const S* pr = pz + TBH;
  const S* pg = pr + TBH;
  const S* phn = pg + TBH;
  const S* pu = phn + TBH;
  const S* pgy = gy.data_ptr<S>();
  const S* pgc = gc.data_ptr<S>();
  const S* pgo = go.data_ptr<S>();
  const S damp = static_cast<S>(damp_d), supp = static_cast<S>(supp_d);
  S* pdax = dax.data_ptr<S>();
  S* pdhb = dhb.data_ptr<S>();
  S* pdR = dR.data_ptr<S>();
  S* pdth = dth.data_ptr<S>();  // [B, H], summed over b by the caller
  std::unique_ptr<Csr<S>> idx;
  if (csr) idx.reset(new Csr<S>(pR, H, N));
  std::vector<S> dy_next(B * H, S(0)), dc_next(B * H, S(0));
  std::vector<int64_t> skipped(B, 0), computed(B, 0);
  // does unit (t, b, h) need dL/dy? (an event, or inside the pseudo-derivative's support)
  auto needs_dy = [&](int64_t off, int64_t h) {
    if (po[off + h] != S(0)) return true;
    const S v = pu[off + h] - pth[h];
    return std::abs(v) * supp < S(1);
  };
  for (int64_t t = T - 1; t >= 0; --t) {
    const S* yprev = t ? py + (t - 1) * B * H : py0;
    const S* cprev = t ? pc + (t - 1) * B * H : pc0;
    // A: element-wise, per batch row
    parallel_for(0, B, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t b = lo; b < hi; ++b) {
        const int64_t off = (t * B + b) * H;
        S* dx = pdax + (t * B + b) * N;
        S* dh = pdhb + (t * B + b) * N;
        const S* cb = cprev + b * H;
        for (int64_t h = 0; h < H; ++h) {
          const S dy = pgy[off + h] + dy_next[b * H + h];
          const S dc = pgc[off + h] + dc_next[b * H + h];
          const S u = pu[off + h], ev = po[off + h], th = pth[h];
          S du = dy * ev + dc;
          const S a = std::abs(u - th) * supp;
          S dv = S(0);
          if (a < S(1)) {
            dv = (pgo[off + h] + dy * u - dc * th) * damp * (S(1) - a);
            du += dv;
          } else {
            ++skipped[b];
          }
          pdth[b * H + h] -= dv + dc * ev;
          const S k = pk ? pk[off + h] : ks;
          const S du0 = k * du;
          S dcp = (S(1) - k) * du;
          const S z = pz[off + h], r = pr[off + h], g = pg[off + h];
          const S dzp = du0 * (cb[h] - g) * z * (S(1) - z);
          const S dnp = du0 * (S(1) - z) * (S(1) - g * g);
          dcp += du0 * z;
          const S dar = dnp * phn[off + h] * r * (S(1) - r);
          dx[h] = dzp;
          dx[H + h] = dar;
          dx[2 * H + h] = dnp;
          dh[h] = dzp;
          dh[H + h] = dar;
          dh[2 * H + h] = dnp * r;
          dc_next[b * H + h] = dcp;
        }
      }
    });
    // B: dR[i, :] += y[t-1, b, i] * dhb[t, b, :] over the event rows i (rows split across threads)
    parallel_for(0, H, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t b = 0; b < B; ++b) {
        const S* yb = yprev + b * H;
        const S* dh = pdhb + (t * B + b) * N;
        for (int64_t i = lo; i < hi; ++i) {
          const S yi = yb[i];
          if (yi == S(0)) continue;
          S* dRi = pdR + i * N;
          if (csr) {
            for (int64_t p = idx->crow[i]; p < idx->crow[i + 1]; ++p) dRi[idx->col[p]] += yi * dh[idx->col[p]];
          } else {
            for (int64_t j = 0; j < N; ++j) dRi[j] += yi * dh[j];
          }
        }
      }
    });
    // C: dy[t-1, b, i] = dhb[t, b, :] . R[i, :] for the units that need it
    if (t > 0 || need_y0) {
      parallel_for(0, B, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t b = lo; b < hi; ++b) {
          const S* dh = pdhb + (t * B + b) * N;
          const int64_t offp = ((t - 1) * B + b) * H;
          for (int64_t i = 0; i < H; ++i) {
            if (t > 0 && !needs_dy(offp, i)) {
              dy_next[b * H + i] = S(0);
              continue;
            }
            ++computed[b];
            S acc = S(0);
            if (csr) {
              for (int64_t p = idx->crow[i]; p < idx->crow[i + 1]; ++p) acc += dh[idx->col[p]] * idx->val[p];
            } else {
              const S* Ri = pR + i * N;
              for (int64_t j = 0; j < N; ++j) acc += dh[j] * Ri[j];
            }
            dy_next[b * H + i] = acc;
          }
        }
      });
    }
  }
  std::copy(dc_next.begin(), dc_next.end(), dc0.data_ptr<S>());
  if (need_y0) std::copy(dy_next.begin(), dy_next.end(), dy0.data_ptr<S>());
  surrogate_skipped = 0;
  dy_computed = 0;
  for (int64_t b = 0; b < B; ++b) {
    surrogate_skipped += skipped[b];
    dy_computed += computed[b];
  }
}

// returns dax [T, B, 3H], dhb [T, B, 3H] (gradient of R y + br), dR [H, 3H], dtheta [B, H],
// dc0 [B, H], dy0 [B, H] and stats [2] (surrogate entries skipped, dy entries computed)
std::vector<at::Tensor> egru_backward(at::Tensor R, at::Tensor theta, at::Tensor c0, at::Tensor y0,
                                      at::Tensor keep, double keep_scalar, at::Tensor y,
                                      at::Tensor c, at::Tensor o, at::Tensor cache, at::Tensor gy,
                                      at::Tensor gc, at::Tensor go, double damp, double supp,
                                      bool csr, bool need_y0) {
  const std::vector<std::pair<const at::Tensor*, const char*>> args{
      {&R, "R"},         {&theta, "theta"}, {&c0, "c0"}, {&y0, "y0"}, {&c, "c"},
      {&o, "o"},         {&cache, "cache"}, {&gy, "gy"}, {&gc, "gc"}, {&go, "go"}};
  for (const auto& [t, n] : args) check(*t, y, n);
  check(y, y, "y");
  if (keep.numel()) check(keep, y, "keep");
  const int64_t T = y.size(0), B = y.size(1), H = R.size(0);
  auto dax = at::empty({T, B, 3 * H}, y.options());
  auto dhb = at::empty({T, B, 3 * H}, y.options());
  auto dR = at::zeros({H, 3 * H}, y.options());
  auto dth = at::zeros({B, H}, y.options());
  auto dc0 = at::empty({B, H}, y.options());
  auto dy0 = at::zeros({B, H}, y.options());
  int64_t skipped = 0, computed = 0;
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "egru_backward", [&] {
    backward_impl<scalar_t>(R, theta, c0, y0, keep, keep_scalar, y, c, o, cache, gy, gc, go, damp,
                            supp, csr, need_y0, dax, dhb, dR, dth, dc0, dy0, skipped, computed);
  });
  auto stats = at::tensor({skipped, computed}, at::kLong);
  return {dax, dhb, dR, dth, dc0, dy0, stats};
}

}  // namespace

TORCH_LIBRARY(neuro_egru, m) {
  m.def("egru_forward", &egru_forward);
  m.def("egru_backward", &egru_backward);
}
