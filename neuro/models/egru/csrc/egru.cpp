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
//
// The sparse x dense products (forward recurrent product, input projection, dR, dW) are "streamed"
// (stream_panel / stream_wgrad): the dense operand is packed in 256-byte column panels, each panel
// row is read once, in order, into eight vector registers and added to the output rows of its
// events, whose 256-byte output panels stay in L1. The terms of every output are added in the same
// order as a row-by-row loop. Phase timers: NEURO_EGRU_PROFILE=1 (benchmarks/egru_profile.py).
// The GEMM paths go through neuro::blas (blas.h): on AMD CPUs the float32 dense dR and the per-step
// recurrent product y R (B = 64 rows, R read along its rows) run on OpenBLAS; the per-step
// dL/dy = dhb R^T (64 rows, R transposed) stays on torch's MKL, faster there.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <ctime>
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

#include "blas.h"  // neuro/kernels/csrc: large float32 GEMMs through OpenBLAS on AMD (NEURO_BLAS)

namespace {

// Phase timers (NEURO_EGRU_PROFILE=1): seconds of wall time per phase, summed over calls, read and
// reset by torch.ops.neuro_egru.egru_profile() (benchmarks/egru_profile.py prints them).
enum Phase {
  kFwdPack, kFwdEvents, kFwdSparse, kFwdGemm, kFwdGates, kFwdState,
  kBwdElem, kBwdBias, kBwdNeed, kBwdDyGemm, kBwdDySparse, kBwdDR, kBwdOther,
  kLinFwd, kLinWgrad, kNumPhases
};
double g_prof[kNumPhases] = {};
bool profiling() {
  static const bool on = [] {
    const char* v = std::getenv("NEURO_EGRU_PROFILE");
    return v && *v && *v != '0';
  }();
  return on;
}
double thread_cpu_s() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}
struct Timer {  // CPU time of the calling thread (the kernels run on one thread in the benchmark)
  double t0 = 0.0;
  bool on;
  Timer() : on(profiling()) { if (on) t0 = thread_cpu_s(); }
  void lap(Phase p) {
    if (!on) return;
    const double t1 = thread_cpu_s();
    g_prof[p] += t1 - t0;
    t0 = t1;
  }
};

at::Tensor egru_profile() {
  auto out = at::empty({kNumPhases}, at::kDouble);
  std::copy(g_prof, g_prof + kNumPhases, out.data_ptr<double>());
  std::fill(g_prof, g_prof + kNumPhases, 0.0);
  return out;
}

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

// Streamed sparse x dense product (the event-driven products of forward, dR and the input
// projection): for the rows r of a block (nr of them, out buffer nr x kW, L1/L2-resident)
//   buf[r, :] = init[:] (or 0) + sum over s ascending, (r, v) in list[s], of v * P[s, :]
// where P is one packed panel (rows s, kW lanes each) read once, in order (hardware-prefetched),
// each row of it held in eight vector registers while the events of that row are added. The
// terms of every output are added in ascending s, as in a dense row-by-row loop.
template <class S>
inline void stream_accumulate(int64_t ns, const int64_t* start, const int32_t* lr, const S* lv,
                              const S* P, S* buf);
template <class S>
inline void stream_panel(int64_t nr, int64_t ns, const int64_t* start, const int32_t* lr,
                         const S* lv, const S* P, const S* init, S* buf) {
  constexpr int64_t W = kW<S>;
  for (int64_t r = 0; r < nr; ++r) {
    if (init) std::copy(init, init + W, buf + r * W);
    else std::fill(buf + r * W, buf + (r + 1) * W, S(0));
  }
  stream_accumulate(ns, start, lr, lv, P, buf);
}

// buf[r, :] += sum over s ascending, (r, v) in list[s], of v * P[s, :] (see stream_panel)
template <class S>
inline void stream_accumulate(int64_t ns, const int64_t* start, const int32_t* lr, const S* lv,
                              const S* P, S* buf) {
  using V = typename Vec<S>::type;
  constexpr int64_t W = kW<S>, L = 32 / sizeof(S);
  for (int64_t q = 0; q < ns; ++q) {
    const int64_t e0 = start[q], e1 = start[q + 1];
    if (e0 == e1) continue;
    const S* row = P + q * W;
    V w[kNV];
#pragma GCC unroll 8
    for (int u = 0; u < kNV; ++u) std::memcpy(&w[u], row + u * L, 32);
    for (int64_t e = e0; e < e1; ++e) {
      S* o = buf + static_cast<int64_t>(lr[e]) * W;
      const V v = V{} + lv[e];
#pragma GCC unroll 8
      for (int u = 0; u < kNV; ++u) {
        V a;
        std::memcpy(&a, o + u * L, 32);
        a += v * w[u];
        std::memcpy(o + u * L, &a, 32);
      }
    }
  }
}

// Rows per block of the streamed products over many rows (NEURO_EGRU_STREAM_ROWS overrides).
int64_t stream_block() {
  static const int64_t n = [] {
    const char* v = std::getenv("NEURO_EGRU_STREAM_ROWS");
    return v && *v ? std::max<int64_t>(1, std::atoll(v)) : int64_t(64);
  }();
  return n;
}

// Column (CSC) event lists of the rows [r0, r1) of a row-major [*, K] matrix x: for column k,
// entries start[k]..start[k+1] hold (row - r0, value) in ascending row order.
template <class S>
int64_t csc_lists(const S* x, int64_t r0, int64_t r1, int64_t K, std::vector<int64_t>& start,
                  std::vector<int32_t>& lr, std::vector<S>& lv) {
  start.assign(K + 1, 0);
  for (int64_t r = r0; r < r1; ++r) {
    const S* xr = x + r * K;
    for (int64_t k = 0; k < K; ++k) start[k + 1] += xr[k] != S(0);
  }
  for (int64_t k = 0; k < K; ++k) start[k + 1] += start[k];
  const int64_t n = start[K];
  lr.resize(n);
  lv.resize(n);
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  for (int64_t r = r0; r < r1; ++r) {
    const S* xr = x + r * K;
    for (int64_t k = 0; k < K; ++k) {
      if (xr[k] != S(0)) {
        lr[fill[k]] = static_cast<int32_t>(r - r0);
        lv[fill[k]++] = xr[k];
      }
    }
  }
  return n;
}

// out[r0:r1, :] (row stride N) = bias + x[r0:r1] Wp over the non-zeros of x (K columns), Wp the
// panels of pack_columns. The rows are cut into blocks of `rb` (their output panel, rb x 256
// bytes, stays in L1) with one CSC event list each; every panel of Wp is read from memory once and
// then from L2 by all the blocks.
template <class S>
void stream_rows(const S* x, int64_t r0, int64_t r1, int64_t K, const S* Wp, int64_t N,
                 const S* bias_padded, S* out, int64_t rb) {
  constexpr int64_t W = kW<S>;
  const int64_t nb = (N + W - 1) / W, nblk = (r1 - r0 + rb - 1) / rb;
  std::vector<std::vector<int64_t>> start(nblk);
  std::vector<std::vector<int32_t>> lr(nblk);
  std::vector<std::vector<S>> lv(nblk);
  for (int64_t q = 0; q < nblk; ++q)
    csc_lists(x, r0 + q * rb, std::min(r1, r0 + (q + 1) * rb), K, start[q], lr[q], lv[q]);
  parallel_for(0, nb, 1, [&](int64_t lo, int64_t hi) {
    std::vector<S> buf(rb * W);
    for (int64_t jb = lo; jb < hi; ++jb) {
      const int64_t j0 = jb * W, n = std::min(W, N - j0);
      for (int64_t q = 0; q < nblk; ++q) {
        const int64_t a = r0 + q * rb, nr = std::min(r1, a + rb) - a;
        stream_panel(nr, K, start[q].data(), lr[q].data(), lv[q].data(), Wp + jb * K * W,
                     bias_padded ? bias_padded + j0 : nullptr, buf.data());
        for (int64_t r = 0; r < nr; ++r)
          std::copy(buf.data() + r * W, buf.data() + r * W + n, out + (a + r) * N + j0);
      }
    }
  });
}

// out[k, :] += sum over m ascending with x[m, k] != 0 of x[m, k] * G[m, :] (the weight gradient of
// a product with a mostly-zero x: dR = y_prev^T dhb, dW = x^T g), x given by rows (xrow(m), K
// entries), G by packed panels (gpanel(jb, m0): rows m0.. of column panel jb, kW lanes each). The m
// range is cut into chunks whose G panel stays in L2; per chunk, the units are cut into blocks of
// 64 whose output panel is accumulated in L1 (stream_accumulate over the chunk's rows in order).
template <class S, class RowF, class PanelF>
void stream_wgrad(const RowF& xrow, int64_t M, int64_t K, int64_t N, const PanelF& gpanel,
                  S* out) {
  constexpr int64_t W = kW<S>, KB = 64;
  const int64_t nb = (N + W - 1) / W, nkb = (K + KB - 1) / KB;
  const int64_t chunk = std::max<int64_t>(1, (128 * 1024) / (W * static_cast<int64_t>(sizeof(S))));
  std::vector<int64_t> start;
  std::vector<int32_t> lr;
  std::vector<S> lv;
  for (int64_t m0 = 0; m0 < M; m0 += chunk) {
    const int64_t m1 = std::min(M, m0 + chunk), ns = m1 - m0;
    // lists of unit block q: start[q * (ns + 1) + s] .. start[q * (ns + 1) + s + 1]
    start.assign(nkb * (ns + 1), 0);
    for (int64_t s = 0; s < ns; ++s) {
      const S* xr = xrow(m0 + s);
      for (int64_t k = 0; k < K; ++k)
        if (xr[k] != S(0)) ++start[(k / KB) * (ns + 1) + s + 1];
    }
    for (size_t q = 1; q < start.size(); ++q) start[q] += start[q - 1];
    const int64_t nnz = start.back();
    lr.resize(nnz);
    lv.resize(nnz);
    std::vector<int64_t> fill(start);
    for (int64_t s = 0; s < ns; ++s) {
      const S* xr = xrow(m0 + s);
      for (int64_t k = 0; k < K; ++k) {
        if (xr[k] != S(0)) {
          const int64_t f = fill[(k / KB) * (ns + 1) + s]++;
          lr[f] = static_cast<int32_t>(k % KB);
          lv[f] = xr[k];
        }
      }
    }
    if (nnz == 0) continue;
    parallel_for(0, nb, 1, [&](int64_t lo, int64_t hi) {
      std::vector<S> buf(KB * W, S(0));
      for (int64_t jb = lo; jb < hi; ++jb) {
        const int64_t j0 = jb * W, n = std::min(W, N - j0);
        const S* P = gpanel(jb, m0);
        for (int64_t q = 0; q < nkb; ++q) {
          const int64_t* st = start.data() + q * (ns + 1);
          if (st[ns] == st[0]) continue;
          const int64_t k0 = q * KB, nr = std::min(K, k0 + KB) - k0;
          for (int64_t r = 0; r < nr; ++r)
            std::copy(out + (k0 + r) * N + j0, out + (k0 + r) * N + j0 + n, buf.data() + r * W);
          stream_accumulate(ns, st, lr.data(), lv.data(), P, buf.data());
          for (int64_t r = 0; r < nr; ++r)
            std::copy(buf.data() + r * W, buf.data() + r * W + n, out + (k0 + r) * N + j0);
        }
      }
    });
  }
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
  Timer tm;
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
  tm.lap(kFwdPack);
  for (int64_t t = 0; t < T; ++t) {
    const at::Tensor yprevT = t ? y.select(0, t - 1) : y0;
    const S* yprev = yprevT.data_ptr<S>();
    const S* cprev = t ? pc + (t - 1) * B * H : pc0;
    const int64_t nnz = event_lists(yprev, B, H, eidx, eval, ecnt);
    rows_read += nnz;
    tm.lap(kFwdEvents);
    bool gemm_step = false;
    if (!csr && nnz > 0 && static_cast<double>(nnz) >= dense_frac * static_cast<double>(B * H)) {
      // dense enough: one GEMM over the rows of units with an event in some batch row
      std::fill(used.begin(), used.end(), uint8_t(0));
      for (int64_t b = 0; b < B; ++b)
        for (int64_t k = 0; k < ecnt[b]; ++k) used[eidx[b * H + k]] = 1;
      std::vector<int64_t> rows;
      for (int64_t i = 0; i < H; ++i)
        if (used[i]) rows.push_back(i);
      if (static_cast<int64_t>(rows.size()) == H) {
        neuro::blas::addmm_out(hbT, br, yprevT, R);
      } else {
        auto sel = at::tensor(rows, at::kLong);
        neuro::blas::addmm_out(hbT, br, yprevT.index_select(1, sel), R.index_select(0, sel));
      }
      ++dense_steps;
      gemm_step = true;
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
      // batch rows in blocks of 64 (buffer 16 KB); R streamed panel by panel
      stream_rows(yprev, 0, B, H, Rp.data(), N, brp.data(), hb, 64);
    }
    tm.lap(gemm_step ? kFwdGemm : kFwdSparse);
    // gates with ATen's vectorised sigmoid / tanh (the step loop's values bit for bit, which the
    // graph executor's equality tests need), written straight into the cache
    {
      const at::Tensor at_ = ax.select(0, t);
      at::Tensor zt = cache.select(0, 0).select(0, t), rt = cache.select(0, 1).select(0, t);
      at::Tensor gt = cache.select(0, 2).select(0, t);
      at::sigmoid_out(zt, at::add(at_.narrow(1, 0, H), hbT.narrow(1, 0, H)));
      at::sigmoid_out(rt, at::add(at_.narrow(1, H, H), hbT.narrow(1, H, H)));
      at::tanh_out(gt, at::add(at_.narrow(1, 2 * H, H), at::mul(rt, hbT.narrow(1, 2 * H, H))));
    }
    tm.lap(kFwdGates);
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
    tm.lap(kFwdState);
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
  Timer tm;
  const double dense_frac = env_fraction("NEURO_EGRU_DENSE_DY", 0.1, B * H * N);
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
  // a scratch buffer kept between calls (per thread and dtype): a fresh [T * B, 3H] allocation is
  // beyond glibc's mmap threshold and would be page-faulted in anew by every call
  static thread_local std::vector<S> dhbp_scratch;
  if (!dense_dR && dhbp_scratch.size() < static_cast<size_t>(nb * TB * W))
    dhbp_scratch.resize(nb * TB * W);
  S* dhbp = dhbp_scratch.data();
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
  tm.lap(kBwdOther);
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
            S* dst = dhbp + (jb * TB + t * B + b) * W;
            std::copy(dh + j0, dh + j0 + n, dst);
            std::fill(dst + n, dst + W, S(0));  // lanes past N (last panel)
          }
        }
      }
    });
    tm.lap(kBwdElem);
    for (int64_t b = 0; b < B; ++b) {
      const S* dh = dh_all + b * N;
      for (int64_t j = 0; j < N; ++j) pdbr[j] += dh[j];
    }
    tm.lap(kBwdBias);
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
      tm.lap(kBwdNeed);
      if (!csr && need > 0 && static_cast<double>(need) >= dense_frac * static_cast<double>(B * H)) {
        neuro::blas::mm_out(dyT, dhbT, R.t());  // one GEMM; entries nobody reads are zeroed below
        dy_computed += B * H;
        ++dense_steps;
        for (int64_t b = 0; b < B; ++b) {
          int64_t k = 0;
          for (int64_t i = 0; i < H; ++i) {
            if (k < ncnt[b] && nidx[b * H + k] == i) ++k;
            else dy_next[b * H + i] = S(0);
          }
        }
        tm.lap(kBwdDyGemm);
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
        tm.lap(kBwdDySparse);
      }
    }
  }
  // B: dR[i, :] = sum over (t, b) with y[t-1, b, i] != 0 of y[t-1, b, i] * dhb[t, b, :], only over
  // the event rows (stream_wgrad: dhb panels read in (t, b) order, L2-sized chunks).
  if (dense_dR) {
    at::Tensor yp = at::cat({y0.unsqueeze(0), y.narrow(0, 0, T - 1)}).reshape({TB, H});
    neuro::blas::mm_out(dR, yp.t(), dhb_full);
    dr_gemm = 1;
    if (csr) dR.mul_(R.ne(0).to(dR.scalar_type()));
  } else {
    // rows tb of y_prev: tb < B -> y0[tb], else y[tb - B] (the [T, B, H] layout is contiguous)
    stream_wgrad<S>([&](int64_t tb) { return tb < B ? py0 + tb * H : py + (tb - B) * H; }, TB, H,
                    N, [&](int64_t jb, int64_t m0) { return dhbp + (jb * TB + m0) * W; },
                    pdR);
    if (csr) {  // only the stored weights have a gradient
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < N; ++j)
          if (pR[i * N + j] == S(0)) pdR[i * N + j] = S(0);
    }
  }
  tm.lap(kBwdDR);
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
  stream_rows(px, 0, M, K, Wp.data(), N, bp.data(), po, stream_block());
}

at::Tensor event_linear_forward(at::Tensor x, at::Tensor Wt, at::Tensor b) {
  TORCH_CHECK(x.dim() == 2 && Wt.dim() == 2 && x.size(1) == Wt.size(0),
              "neuro_egru: event_linear needs x [M, K] and W [K, N]");
  check(x, x, "x");
  check(Wt, x, "W");
  if (b.numel()) check(b, x, "b");
  auto out = at::empty({x.size(0), Wt.size(1)}, x.options());
  Timer tm;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "event_linear_forward",
                             [&] { event_linear_forward_impl<scalar_t>(x, Wt, b, out); });
  tm.lap(kLinFwd);
  return out;
}

template <class S>
void event_linear_wgrad_impl(const at::Tensor& x, const at::Tensor& g, at::Tensor& dW) {
  constexpr int64_t W = kW<S>;
  const int64_t M = x.size(0), K = x.size(1), N = g.size(1);
  const S* px = x.data_ptr<S>();
  const S* pg = g.data_ptr<S>();
  const int64_t chunk = std::max<int64_t>(1, (128 * 1024) / (W * static_cast<int64_t>(sizeof(S))));
  std::vector<S> gp;
  for (int64_t m0 = 0; m0 < M; m0 += chunk) {  // g rows [m0, m1) packed in column panels
    const int64_t rows = std::min(M, m0 + chunk) - m0;
    gp = pack_columns(pg + m0 * N, rows, N);
    stream_wgrad<S>([&](int64_t m) { return px + (m0 + m) * K; }, rows, K, N,
                    [&](int64_t jb, int64_t r0) { return gp.data() + (jb * rows + r0) * W; },
                    dW.data_ptr<S>());
  }
}

at::Tensor event_linear_wgrad(at::Tensor x, at::Tensor g) {
  TORCH_CHECK(x.dim() == 2 && g.dim() == 2 && x.size(0) == g.size(0),
              "neuro_egru: event_linear_wgrad needs x [M, K] and g [M, N]");
  check(x, x, "x");
  check(g, x, "g");
  auto dW = at::zeros({x.size(1), g.size(1)}, x.options());
  Timer tm;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "event_linear_wgrad",
                             [&] { event_linear_wgrad_impl<scalar_t>(x, g, dW); });
  tm.lap(kLinWgrad);
  return dW;
}

}  // namespace

TORCH_LIBRARY(neuro_egru, m) {
  m.def("egru_forward", &egru_forward);
  m.def("egru_backward", &egru_backward);
  m.def("event_linear_forward", &event_linear_forward);
  m.def("event_linear_wgrad", &event_linear_wgrad);
  m.def("egru_profile", &egru_profile);
}
