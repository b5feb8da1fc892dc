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
#include <cstdlib>
#include <cstring>
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

void check(const at::Tensor& t, const at::Tensor& like, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), "neuro_egru: ", name, " must be a CPU tensor");
  TORCH_CHECK(t.scalar_type() == like.scalar_type(), "neuro_egru: ", name, " has dtype ",
              t.scalar_type(), ", expected ", like.scalar_type());
  TORCH_CHECK(t.is_contiguous(), "neuro_egru: ", name, " must be contiguous");
}

// Lanes of one register block: 256 bytes (8 AVX2 registers of float32 / float64).
template <class S>
constexpr int64_t kW = 256 / sizeof(S);

// R [H, N] repacked as column blocks of kW: Rp[(jb * H + i) * kW + w] = R[i, jb * kW + w] (0-padded),
// so one block of every row is a contiguous H x 256-byte panel that stays in L2 while all batch
// rows read their event rows from it.
template <class S>
std::vector<S> pack_columns(const S* R, int64_t H, int64_t N) {
  constexpr int64_t W = kW<S>;
  const int64_t nb = (N + W - 1) / W;
  std::vector<S> Rp(nb * H * W, S(0));
  for (int64_t jb = 0; jb < nb; ++jb) {
    const int64_t j0 = jb * W, w = std::min(W, N - j0);
    for (int64_t i = 0; i < H; ++i) std::copy(R + i * N + j0, R + i * N + j0 + w, &Rp[(jb * H + i) * W]);
  }
  return Rp;
}

// 32-byte vectors (GCC/Clang vector extensions: AVX2 registers here, two SSE/NEON registers
// elsewhere). Element-wise a * b + c on them is a multiply then an add, as in the scalar code.
template <class S>
struct Vec;
template <>
struct Vec<float> {
  typedef float type __attribute__((vector_size(32)));
};
template <>
struct Vec<double> {
  typedef double type __attribute__((vector_size(32)));
};
constexpr int kNV = 8;  // vectors per 256-byte block

// out[0:n] (n <= kW) = init[0:n] + sum_k val[k] * P[idx[k] * kW : +kW]; the eight vector
// accumulators stay in registers, P is one packed panel.
template <class S>
inline void gather_axpy(const S* init, const int32_t* idx, const S* val, int64_t n_ev, const S* P,
                        S* out, int64_t n) {
  using V = typename Vec<S>::type;
  constexpr int64_t W = kW<S>, L = 32 / sizeof(S);
  S buf[W];
  for (int64_t w = 0; w < W; ++w) buf[w] = w < n ? init[w] : S(0);
  V acc[kNV];
#pragma GCC unroll 8
  for (int u = 0; u < kNV; ++u) std::memcpy(&acc[u], buf + u * L, 32);
  for (int64_t k = 0; k < n_ev; ++k) {
    const V v = V{} + val[k];
    const S* row = P + static_cast<int64_t>(idx[k]) * W;
#pragma GCC unroll 8
    for (int u = 0; u < kNV; ++u) {
      V r;
      std::memcpy(&r, row + u * L, 32);
      acc[u] += v * r;
    }
  }
#pragma GCC unroll 8
  for (int u = 0; u < kNV; ++u) std::memcpy(buf + u * L, &acc[u], 32);
  std::copy(buf, buf + n, out);
}

// a . b over n entries with four vector lane sums (no reassociated scalar sum; vectorised)
template <class S>
inline S lane_dot(const S* a, const S* b, int64_t n) {
  using V = typename Vec<S>::type;
  constexpr int64_t L = 32 / sizeof(S);
  V acc[4] = {};
  int64_t j = 0;
  for (; j + 4 * L <= n; j += 4 * L) {
#pragma GCC unroll 4
    for (int u = 0; u < 4; ++u) {
      V x, y;
      std::memcpy(&x, a + j + u * L, 32);
      std::memcpy(&y, b + j + u * L, 32);
      acc[u] += x * y;
    }
  }
  S s = S(0);
  for (int u = 0; u < 4; ++u)
    for (int64_t l = 0; l < L; ++l) s += acc[u][l];
  for (; j < n; ++j) s += a[j] * b[j];
  return s;
}

// Event lists of one [B, H] state: for row b, idx[b*H + k], val[b*H + k], k < cnt[b].
template <class S>
int64_t event_lists(const S* y, int64_t B, int64_t H, std::vector<int32_t>& idx, std::vector<S>& val,
                    std::vector<int64_t>& cnt) {
  int64_t total = 0;
  for (int64_t b = 0; b < B; ++b) {
    int64_t n = 0;
    const S* yb = y + b * H;
    for (int64_t i = 0; i < H; ++i) {
      if (yb[i] != S(0)) {
        idx[b * H + n] = static_cast<int32_t>(i);
        val[b * H + n] = yb[i];
        ++n;
      }
    }
    cnt[b] = n;
    total += n;
  }
  return total;
}

// Fraction of events (per entry of y[t-1]) above which the recurrent product of a step is one BLAS
// GEMM over the event rows (the union over the batch) instead of the per-row gather; and fraction of
// needed dL/dy entries above which dL/dy[t-1] = dhb R^T is one GEMM. Set by measurement
// (benchmarks/egru_speed.py); NEURO_EGRU_DENSE_FWD / NEURO_EGRU_DENSE_DY override them.
// Tiny problems (B * H * 3H below 2^18 multiply-adds per step) always take the sparse paths unless
// the variable is set (the tests set it to exercise the GEMM paths).
double env_fraction(const char* name, double fallback, int64_t work) {
  const char* v = std::getenv(name);
  if (v && *v) return std::atof(v);
  return work >= (int64_t(1) << 18) ? fallback : 2.0;
}

template <class S>
void forward_impl(const at::Tensor& ax, const at::Tensor& R, const at::Tensor& br,
                  const at::Tensor& theta, const at::Tensor& c0, const at::Tensor& y0,
                  const at::Tensor& keep, double keep_scalar, bool csr, at::Tensor& y,
                  at::Tensor& c, at::Tensor& o, at::Tensor& cache, int64_t& rows_read,
                  int64_t& dense_steps) {
  constexpr int64_t W = kW<S>;
  const int64_t T = ax.size(0), B = ax.size(1), H = R.size(0), N = 3 * H;
  const int64_t nb = (N + W - 1) / W;
  const S* pax = ax.data_ptr<S>();
  const S* pR = R.data_ptr<S>();
  const S* pbr = br.data_ptr<S>();
  const S* pth = theta.data_ptr<S>();
  const S* pc0 = c0.data_ptr<S>();
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
  const double dense_frac = env_fraction("NEURO_EGRU_DENSE_FWD", 0.3, B * H * N);
  std::unique_ptr<Csr<S>> idx;
  std::vector<S> Rp;
  // few rows (T * B <= 8, e.g. token-by-token inference): packing R would cost more than the
  // product; the event rows are read in place (contiguous rows of R, vectorised axpy)
  const bool direct = !csr && T * B <= 8;
  if (csr) idx.reset(new Csr<S>(pR, H, N));
  else if (!direct) Rp = pack_columns(pR, H, N);
  std::vector<S> brp(nb * W, S(0));
  std::copy(pbr, pbr + N, brp.begin());
  std::vector<int32_t> eidx(B * H);
  std::vector<S> eval(B * H);
  std::vector<int64_t> ecnt(B);
  at::Tensor hbT = at::empty({B, N}, ax.options());
  S* hb = hbT.data_ptr<S>();
  std::vector<uint8_t> used(H);
  rows_read = 0;
  dense_steps = 0;
  for (int64_t t = 0; t < T; ++t) {
    const at::Tensor yprevT = t ? y.select(0, t - 1) : y0;
    const S* yprev = yprevT.data_ptr<S>();
    const S* cprev = t ? pc + (t - 1) * B * H : pc0;
    const int64_t nnz = event_lists(yprev, B, H, eidx, eval, ecnt);
    rows_read += nnz;
    if (!csr && nnz > 0 && static_cast<double>(nnz) >= dense_frac * static_cast<double>(B * H)) {
      // dense enough: one GEMM over the rows of units with an event in some batch row
      std::fill(used.begin(), used.end(), uint8_t(0));
      for (int64_t b = 0; b < B; ++b)
        for (int64_t k = 0; k < ecnt[b]; ++k) used[eidx[b * H + k]] = 1;
      std::vector<int64_t> rows;
      for (int64_t i = 0; i < H; ++i)
        if (used[i]) rows.push_back(i);
      if (static_cast<int64_t>(rows.size()) == H) {
        at::addmm_out(hbT, br, yprevT, R);
      } else {
        auto sel = at::tensor(rows, at::kLong);
        at::addmm_out(hbT, br, yprevT.index_select(1, sel), R.index_select(0, sel));
      }
      ++dense_steps;
    } else if (csr) {
      parallel_for(0, B, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t b = lo; b < hi; ++b) {
          S* h = hb + b * N;
          std::copy(pbr, pbr + N, h);
          for (int64_t k = 0; k < ecnt[b]; ++k) {
            const int64_t i = eidx[b * H + k];
            const S yi = eval[b * H + k];
            for (int64_t p = idx->crow[i]; p < idx->crow[i + 1]; ++p) h[idx->col[p]] += yi * idx->val[p];
          }
        }
      });
    } else if (direct) {
      for (int64_t b = 0; b < B; ++b) {
        S* h = hb + b * N;
        std::copy(pbr, pbr + N, h);
        for (int64_t k = 0; k < ecnt[b]; ++k) {
          const S yi = eval[b * H + k];
          const S* Ri = pR + static_cast<int64_t>(eidx[b * H + k]) * N;
          for (int64_t j = 0; j < N; ++j) h[j] += yi * Ri[j];
        }
      }
    } else {
      parallel_for(0, nb, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t jb = lo; jb < hi; ++jb) {
          const S* P = Rp.data() + jb * H * W;
          const int64_t j0 = jb * W, n = std::min(W, N - j0);
          for (int64_t b = 0; b < B; ++b)
            gather_axpy(brp.data() + j0, eidx.data() + b * H, eval.data() + b * H, ecnt[b], P,
                        hb + b * N + j0, n);
        }
      });
    }
    // gates with ATen's vectorised sigmoid / tanh, written straight into the cache
    {
      const at::Tensor at_ = ax.select(0, t);
      at::Tensor zt = cache.select(0, 0).select(0, t), rt = cache.select(0, 1).select(0, t);
      at::Tensor gt = cache.select(0, 2).select(0, t);
      at::sigmoid_out(zt, at::add(at_.narrow(1, 0, H), hbT.narrow(1, 0, H)));
      at::sigmoid_out(rt, at::add(at_.narrow(1, H, H), hbT.narrow(1, H, H)));
      at::tanh_out(gt, at::add(at_.narrow(1, 2 * H, H), at::mul(rt, hbT.narrow(1, 2 * H, H))));
    }
    parallel_for(0, B, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t b = lo; b < hi; ++b) {
        const S* h = hb + b * N;
        const int64_t off = (t * B + b) * H;
        const S* cb = cprev + b * H;
        for (int64_t j = 0; j < H; ++j) {
          const S z = pz[off + j], g = pg[off + j];
          S u = z * cb[j] + (S(1) - z) * g;
          const S k = pk ? pk[off + j] : ks;
          if (k != S(1)) u = (u - cb[j]) * k + cb[j];
          const S ev = (u - pth[j]) > S(0) ? S(1) : S(0);
          phn[off + j] = h[2 * H + j];
          pu[off + j] = u;
          po[off + j] = ev;
          py[off + j] = ev * u;
          pc[off + j] = u - ev * pth[j];
        }
      }
    });
  }
}

// returns y, c, o [T, B, H], cache [5, T, B, H] and stats [2] (event rows of R read, steps done
// as one GEMM)
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
  int64_t rows = 0, dense = 0;
  AT_DISPATCH_FLOATING_TYPES(ax.scalar_type(), "egru_forward", [&] {
    forward_impl<scalar_t>(ax, R, br, theta, c0, y0, keep, keep_scalar, csr, y, c, o, cache, rows,
                           dense);
  });
  auto stats = at::tensor({rows, dense}, at::kLong);
  return {y, c, o, cache, stats};
}

template <class S>
void backward_impl(const at::Tensor& R, const at::Tensor& theta, const at::Tensor& c0,
                   const at::Tensor& y0, const at::Tensor& keep, double keep_scalar,
                   const at::Tensor& y, const at::Tensor& c, const at::Tensor& o,
                   const at::Tensor& cache, const at::Tensor& gy, const at::Tensor& gc,
                   const at::Tensor& go, double damp_d, double supp_d, bool csr, bool need_y0,
                   at::Tensor& dax, at::Tensor& dbr, at::Tensor& dR, at::Tensor& dth,
                   at::Tensor& dc0, at::Tensor& dy0, int64_t& surrogate_skipped,
                   int64_t& dy_computed, int64_t& dense_steps, int64_t& dr_gemm) {
  constexpr int64_t W = kW<S>;
  const int64_t T = y.size(0), B = y.size(1), H = R.size(0), N = 3 * H;
  const int64_t nb = (N + W - 1) / W, TB = T * B;
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
  S* pdbr = dbr.data_ptr<S>();
  S* pdR = dR.data_ptr<S>();
  S* pdth = dth.data_ptr<S>();  // [B, H], summed over b by the caller
  const double dense_frac = env_fraction("NEURO_EGRU_DENSE_DY", 0.35, B * H * N);
  std::unique_ptr<Csr<S>> idx;
  if (csr) idx.reset(new Csr<S>(pR, H, N));
  // dR: with dense enough activity over the whole sequence one GEMM Y_prev^T dHB (dhb kept as
  // [T * B, 3H]); else the event-row gather pass below (dhb packed in column blocks,
  // dhbp[(jb * TB + tb) * W + w])
  int64_t y_nnz = 0;
  for (int64_t q = 0; q < B * H; ++q) y_nnz += py0[q] != S(0);
  for (int64_t q = 0; q < (T - 1) * B * H; ++q) y_nnz += py[q] != S(0);
  const bool dense_dR = static_cast<double>(y_nnz) >=
      env_fraction("NEURO_EGRU_DENSE_DR", 0.3, B * H * N) * static_cast<double>(TB * H);
  std::vector<S> dhbp(dense_dR ? 0 : nb * TB * W, S(0));
  at::Tensor dhb_full = dense_dR ? at::empty({TB, N}, y.options()) : at::Tensor();
  at::Tensor dhbT = at::empty({B, N}, y.options());  // dhb of the current step
  S* dh_all = dhbT.data_ptr<S>();
  at::Tensor dyT = at::zeros({B, H}, y.options());   // dL/dy of the previous step
  S* dy_next = dyT.data_ptr<S>();
  std::vector<S> dc_next(B * H, S(0));
  std::vector<int64_t> skipped(B, 0);
  std::vector<int32_t> nidx(B * H);
  std::vector<int64_t> ncnt(B);
  surrogate_skipped = 0;
  dy_computed = 0;
  dense_steps = 0;
  dr_gemm = 0;
  for (int64_t t = T - 1; t >= 0; --t) {
    const S* cprev = t ? pc + (t - 1) * B * H : pc0;
    // A: element-wise, per batch row
    parallel_for(0, B, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t b = lo; b < hi; ++b) {
        const int64_t off = (t * B + b) * H;
        S* dx = pdax + (t * B + b) * N;
        S* dh = dh_all + b * N;
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
        if (dense_dR) {
          std::copy(dh, dh + N, dhb_full.data_ptr<S>() + (t * B + b) * N);
        } else {
          for (int64_t jb = 0; jb < nb; ++jb) {
            const int64_t j0 = jb * W, n = std::min(W, N - j0);
            std::copy(dh + j0, dh + j0 + n, &dhbp[(jb * TB + t * B + b) * W]);
          }
        }
      }
    });
    for (int64_t b = 0; b < B; ++b) {
      const S* dh = dh_all + b * N;
      for (int64_t j = 0; j < N; ++j) pdbr[j] += dh[j];
    }
    // C: dy[t-1, b, i] = dhb[t, b, :] . R[i, :] for the units that need it (an event at t-1 or
    // inside the pseudo-derivative's support; all of them for y0)
    if (t > 0 || need_y0) {
      int64_t need = 0;
      for (int64_t b = 0; b < B; ++b) {
        int64_t n = 0;
        for (int64_t i = 0; i < H; ++i) {
          bool use = true;
          if (t > 0) {
            const int64_t q = ((t - 1) * B + b) * H + i;
            use = po[q] != S(0) || std::abs(pu[q] - pth[i]) * supp < S(1);
          }
          if (use) nidx[b * H + n++] = static_cast<int32_t>(i);
        }
        ncnt[b] = n;
        need += n;
      }
      if (!csr && need > 0 && static_cast<double>(need) >= dense_frac * static_cast<double>(B * H)) {
        at::mm_out(dyT, dhbT, R.t());  // one GEMM; entries nobody reads are zeroed below
        dy_computed += B * H;
        ++dense_steps;
        for (int64_t b = 0; b < B; ++b) {
          int64_t k = 0;
          for (int64_t i = 0; i < H; ++i) {
            if (k < ncnt[b] && nidx[b * H + k] == i) ++k;
            else dy_next[b * H + i] = S(0);
          }
        }
      } else {
        dy_computed += need;
        parallel_for(0, B, 1, [&](int64_t lo, int64_t hi) {
          for (int64_t b = lo; b < hi; ++b) {
            const S* dh = dh_all + b * N;
            S* dyb = dy_next + b * H;
            std::fill(dyb, dyb + H, S(0));
            for (int64_t k = 0; k < ncnt[b]; ++k) {
              const int64_t i = nidx[b * H + k];
              if (csr) {
                S acc = S(0);
                for (int64_t p = idx->crow[i]; p < idx->crow[i + 1]; ++p) acc += dh[idx->col[p]] * idx->val[p];
                dyb[i] = acc;
              } else {
                dyb[i] = lane_dot(dh, pR + i * N, N);
              }
            }
          }
        });
      }
    }
  }
  // B: dR[i, :] = sum over (t, b) with y[t-1, b, i] != 0 of y[t-1, b, i] * dhb[t, b, :], only over
  // the event rows; the (t, b) range is cut into chunks whose dhb panel (chunk x 256 bytes) stays in
  // L2, and every panel is read through the per-unit event lists with register accumulators.
  if (dense_dR) {
    at::Tensor yp = at::cat({y0.unsqueeze(0), y.narrow(0, 0, T - 1)}).reshape({TB, H});
    at::mm_out(dR, yp.t(), dhb_full);
    dr_gemm = 1;
    if (csr) dR.mul_(R.ne(0).to(dR.scalar_type()));
  } else {
    const int64_t chunk = std::max<int64_t>(1, (256 * 1024) / (W * static_cast<int64_t>(sizeof(S))));
    std::vector<int64_t> start(H + 1);
    std::vector<int32_t> lidx;
    std::vector<S> lval;
    for (int64_t r0 = 0; r0 < TB; r0 += chunk) {
      const int64_t r1 = std::min(TB, r0 + chunk);
      // rows tb of y_prev: tb < B -> y0[tb], else y[tb - B] (the [T, B, H] layout is contiguous)
      std::fill(start.begin(), start.end(), 0);
      for (int64_t tb = r0; tb < r1; ++tb) {
        const S* yr = tb < B ? py0 + tb * H : py + (tb - B) * H;
        for (int64_t i = 0; i < H; ++i)
          if (yr[i] != S(0)) ++start[i + 1];
      }
      for (int64_t i = 0; i < H; ++i) start[i + 1] += start[i];
      lidx.resize(start[H]);
      lval.resize(start[H]);
      std::vector<int64_t> fill(start.begin(), start.end() - 1);
      for (int64_t tb = r0; tb < r1; ++tb) {
        const S* yr = tb < B ? py0 + tb * H : py + (tb - B) * H;
        for (int64_t i = 0; i < H; ++i) {
          if (yr[i] != S(0)) {
            lidx[fill[i]] = static_cast<int32_t>(tb - r0);
            lval[fill[i]++] = yr[i];
          }
        }
      }
      parallel_for(0, nb, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t jb = lo; jb < hi; ++jb) {
          const S* P = dhbp.data() + (jb * TB + r0) * W;
          const int64_t j0 = jb * W, n = std::min(W, N - j0);
          for (int64_t i = 0; i < H; ++i) {
            const int64_t m = start[i + 1] - start[i];
            if (m == 0) continue;
            S* out = pdR + i * N + j0;
            gather_axpy(out, lidx.data() + start[i], lval.data() + start[i], m, P, out, n);
          }
        }
      });
    }
    if (csr) {  // only the stored weights have a gradient
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < N; ++j)
          if (pR[i * N + j] == S(0)) pdR[i * N + j] = S(0);
    }
  }
  std::copy(dc_next.begin(), dc_next.end(), dc0.data_ptr<S>());
  if (need_y0) std::copy(dy_next, dy_next + B * H, dy0.data_ptr<S>());
  for (int64_t b = 0; b < B; ++b) surrogate_skipped += skipped[b];
}

// returns dax [T, B, 3H], dbr [3H], dR [H, 3H], dtheta [B, H], dc0 [B, H], dy0 [B, H] and stats [4]
// (surrogate entries skipped, dy entries computed, steps whose dy was one GEMM, dR was one GEMM)
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
  auto dbr = at::zeros({3 * H}, y.options());
  auto dR = at::zeros({H, 3 * H}, y.options());
  auto dth = at::zeros({B, H}, y.options());
  auto dc0 = at::empty({B, H}, y.options());
  auto dy0 = at::zeros({B, H}, y.options());
  int64_t skipped = 0, computed = 0, dense = 0, dr_gemm = 0;
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "egru_backward", [&] {
    backward_impl<scalar_t>(R, theta, c0, y0, keep, keep_scalar, y, c, o, cache, gy, gc, go, damp,
                            supp, csr, need_y0, dax, dbr, dR, dth, dc0, dy0, skipped, computed,
                            dense, dr_gemm);
  });
  auto stats = at::tensor({skipped, computed, dense, dr_gemm}, at::kLong);
  return {dax, dbr, dR, dth, dc0, dy0, stats};
}

// ---- event-driven input projection: out = x W + b for a mostly-zero x (the event output of the
// layer below), and its weight gradient x^T g over the non-zeros of x only -------------------

template <class S>
void event_linear_forward_impl(const at::Tensor& x, const at::Tensor& Wt, const at::Tensor& b,
                               at::Tensor& out) {
  constexpr int64_t W = kW<S>;
  const int64_t M = x.size(0), K = x.size(1), N = Wt.size(1), nb = (N + W - 1) / W;
  const S* px = x.data_ptr<S>();
  S* po = out.data_ptr<S>();
  if (M <= 8) {  // a few rows (token-by-token inference): the event rows of W read in place
    const S* pW = Wt.data_ptr<S>();
    const S* pb = b.numel() ? b.data_ptr<S>() : nullptr;
    for (int64_t m = 0; m < M; ++m) {
      S* o = po + m * N;
      if (pb) std::copy(pb, pb + N, o);
      else std::fill(o, o + N, S(0));
      for (int64_t k = 0; k < K; ++k) {
        const S v = px[m * K + k];
        if (v == S(0)) continue;
        const S* row = pW + k * N;
        for (int64_t j = 0; j < N; ++j) o[j] += v * row[j];
      }
    }
    return;
  }
  std::vector<S> Wp = pack_columns(Wt.data_ptr<S>(), K, N);
  std::vector<S> bp(nb * W, S(0));
  if (b.numel()) std::copy(b.data_ptr<S>(), b.data_ptr<S>() + N, bp.begin());
  std::vector<int32_t> eidx(M * K);
  std::vector<S> eval(M * K);
  std::vector<int64_t> ecnt(M);
  event_lists(px, M, K, eidx, eval, ecnt);
  parallel_for(0, nb, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t jb = lo; jb < hi; ++jb) {
      const S* P = Wp.data() + jb * K * W;
      const int64_t j0 = jb * W, n = std::min(W, N - j0);
      for (int64_t m = 0; m < M; ++m)
        gather_axpy(bp.data() + j0, eidx.data() + m * K, eval.data() + m * K, ecnt[m], P,
                    po + m * N + j0, n);
    }
  });
}

at::Tensor event_linear_forward(at::Tensor x, at::Tensor Wt, at::Tensor b) {
  TORCH_CHECK(x.dim() == 2 && Wt.dim() == 2 && x.size(1) == Wt.size(0),
              "neuro_egru: event_linear needs x [M, K] and W [K, N]");
  check(x, x, "x");
  check(Wt, x, "W");
  if (b.numel()) check(b, x, "b");
  auto out = at::empty({x.size(0), Wt.size(1)}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "event_linear_forward",
                             [&] { event_linear_forward_impl<scalar_t>(x, Wt, b, out); });
  return out;
}

template <class S>
void event_linear_wgrad_impl(const at::Tensor& x, const at::Tensor& g, at::Tensor& dW) {
  constexpr int64_t W = kW<S>;
  const int64_t M = x.size(0), K = x.size(1), N = g.size(1), nb = (N + W - 1) / W;
  const S* px = x.data_ptr<S>();
  const S* pg = g.data_ptr<S>();
  S* pdW = dW.data_ptr<S>();
  const int64_t chunk = std::max<int64_t>(1, (256 * 1024) / (W * static_cast<int64_t>(sizeof(S))));
  std::vector<S> gp;
  std::vector<int64_t> start(K + 1);
  std::vector<int32_t> lidx;
  std::vector<S> lval;
  for (int64_t r0 = 0; r0 < M; r0 += chunk) {
    const int64_t r1 = std::min(M, r0 + chunk), rows = r1 - r0;
    gp.assign(nb * rows * W, S(0));  // g rows [r0, r1) packed in column blocks
    for (int64_t m = r0; m < r1; ++m)
      for (int64_t jb = 0; jb < nb; ++jb) {
        const int64_t j0 = jb * W, n = std::min(W, N - j0);
        std::copy(pg + m * N + j0, pg + m * N + j0 + n, &gp[(jb * rows + m - r0) * W]);
      }
    std::fill(start.begin(), start.end(), 0);
    for (int64_t m = r0; m < r1; ++m)
      for (int64_t k = 0; k < K; ++k)
        if (px[m * K + k] != S(0)) ++start[k + 1];
    for (int64_t k = 0; k < K; ++k) start[k + 1] += start[k];
    lidx.resize(start[K]);
    lval.resize(start[K]);
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t m = r0; m < r1; ++m)
      for (int64_t k = 0; k < K; ++k)
        if (px[m * K + k] != S(0)) {
          lidx[fill[k]] = static_cast<int32_t>(m - r0);
          lval[fill[k]++] = px[m * K + k];
        }
    parallel_for(0, nb, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t jb = lo; jb < hi; ++jb) {
        const S* P = gp.data() + jb * rows * W;
        const int64_t j0 = jb * W, n = std::min(W, N - j0);
        for (int64_t k = 0; k < K; ++k) {
          const int64_t cnt = start[k + 1] - start[k];
          if (cnt == 0) continue;
          S* o = pdW + k * N + j0;
          gather_axpy(o, lidx.data() + start[k], lval.data() + start[k], cnt, P, o, n);
        }
      }
    });
  }
}

at::Tensor event_linear_wgrad(at::Tensor x, at::Tensor g) {
  TORCH_CHECK(x.dim() == 2 && g.dim() == 2 && x.size(0) == g.size(0),
              "neuro_egru: event_linear_wgrad needs x [M, K] and g [M, N]");
  check(x, x, "x");
  check(g, x, "g");
  auto dW = at::zeros({x.size(1), g.size(1)}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "event_linear_wgrad",
                             [&] { event_linear_wgrad_impl<scalar_t>(x, g, dW); });
  return dW;
}

}  // namespace

TORCH_LIBRARY(neuro_egru, m) {
  m.def("egru_forward", &egru_forward);
  m.def("egru_backward", &egru_backward);
  m.def("event_linear_forward", &event_linear_forward);
  m.def("event_linear_wgrad", &event_linear_wgrad);
}
