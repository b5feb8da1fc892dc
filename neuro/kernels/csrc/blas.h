// Float32 GEMM through OpenBLAS where it is faster than torch's MKL, for every neuro C++ kernel.
//
//   neuro::blas::gemm_out(C, A, B, alpha, beta)   C = alpha * A @ B + beta * C
//   neuro::blas::mm_out(C, A, B)                  C = A @ B
//   neuro::blas::addmm_out(C, bias, A, B)         C = bias + A @ B      (bias [N], added per row)
//
// A [M, K], B [K, N], C [M, N]: 2-D CPU tensors of one dtype. op(A) / op(B) are expressed as
// strided views (pass `R.t()` for R^T): a view with unit stride along either dimension goes to
// BLAS as is (row-major or transposed), any other is copied contiguous first. C must not alias A
// or B. With beta == 0, C is not read (NaN in C does not propagate), as in BLAS and at::addmm.
//
// Why: on the 2-core AMD EPYC (Zen 3, AVX2) these kernels were tuned on, torch's MKL 2024.2 runs
// large single-thread SGEMMs at 42-54 GFLOP/s, the OpenBLAS 0.3.30 inside numpy's wheel at 65-79
// (4480 x 1350 x 4050: 1093 vs 651 ms; 1350 x 4480 x 4050 with A transposed: 958 vs 719 ms).
// Below 256 rows/columns the two are close: OpenBLAS wins when B is read along its rows
// (64 x 1350 @ 1350 x 4050: 17.1 vs 13.8 ms), MKL when B is a transposed view
// (64 x 4050 @ (1350 x 4050)^T: 13.4 vs 15.2 ms). So
// only products with min(M, N, K) >= 64 (op(B) row-major) or >= 256 (op(B) transposed) are
// routed (NEURO_BLAS_MIN_DIM overrides both); measured by benchmarks/blas_crossover.py.
//
// Selection, read at every call (so tests and users may switch it at run time):
//   NEURO_BLAS=auto      (default) OpenBLAS on AMD CPUs (cpuid vendor "AuthenticAMD") when it is
//                        found, torch (at::mm_out / at::addmm_out) otherwise
//   NEURO_BLAS=torch     always torch
//   NEURO_BLAS=openblas  OpenBLAS for every routed float32 product; an error naming what is
//                        missing when it cannot be found (checked at every float32 call)
//   NEURO_BLAS_MIN_DIM   one size threshold for both cases above (>= 1)
//   NEURO_BLAS_LIB       path of the OpenBLAS shared library to use (dlopen'ed, loaded if it is
//                        not yet); unset: the library already loaded in the process whose path
//                        contains "openblas" (numpy's, loaded by `import numpy`, which torch and
//                        neuro do first), found with dl_iterate_phdr and dlopen(RTLD_NOLOAD).
// Nothing is linked: the symbols (cblas_sgemm with 64-bit or 32-bit integers, with or without
// numpy's "scipy_" prefix, and openblas_set_num_threads_local) are looked up with dlsym.
//
// Threads: each OpenBLAS call runs on at::get_num_threads() threads
// (openblas_set_num_threads_local, whose return value, the previous count, is restored after the
// call). Call it from outside at::parallel_for regions. Results: float32 rounding differs from
// MKL's (another summation order, relative differences ~1e-7 per product).
//
// Header-only: each extension that includes it keeps its own cache of the resolved library
// (resolved once per NEURO_BLAS_LIB value). The Python API is neuro/kernels/blas.py.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <dlfcn.h>
#include <link.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace neuro {
namespace blas {

enum class Backend : int64_t { Torch = 0, OpenBLAS = 1 };

struct OpenBlasLib {
  using Sgemm64 = void (*)(int, int, int, int64_t, int64_t, int64_t, float, const float*, int64_t,
                           const float*, int64_t, float, float*, int64_t);
  using Sgemm32 = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int,
                           float, float*, int);
  using SetThreads = int (*)(int);
  Sgemm64 sgemm64 = nullptr;
  Sgemm32 sgemm32 = nullptr;
  SetThreads set_threads_local = nullptr;
  std::string path;   // the library found (empty: none)
  std::string error;  // why it cannot be used (empty: it can)
  bool ok() const { return error.empty() && (sgemm64 || sgemm32) && set_threads_local; }
};

// What the last routed call on this thread did (read by the tests through neuro_blas::last_call).
struct LastCall {
  int64_t backend = -1;     // Backend, -1: none yet
  int64_t requested = 0;    // threads asked for (at::get_num_threads())
  int64_t effective = 0;    // threads OpenBLAS reported while the product ran
  int64_t restored = 0;     // the count put back after the call
};

inline LastCall& last_call() {
  static thread_local LastCall c;
  return c;
}

inline bool cpu_is_amd() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return false;
  char v[13];
  std::memcpy(v, &b, 4);
  std::memcpy(v + 4, &d, 4);
  std::memcpy(v + 8, &c, 4);
  v[12] = 0;
  return std::strcmp(v, "AuthenticAMD") == 0;
#else
  return false;
#endif
}

namespace detail {

inline int find_loaded(struct dl_phdr_info* info, size_t, void* data) {
  const char* name = info->dlpi_name;
  if (name && std::strstr(name, "openblas")) {
    *static_cast<std::string*>(data) = name;
    return 1;  // the first one
  }
  return 0;
}

inline void resolve(OpenBlasLib& lib, const char* explicit_path) {
  lib = OpenBlasLib{};
  void* h = nullptr;
  if (explicit_path && *explicit_path) {
    lib.path = explicit_path;
    h = dlopen(explicit_path, RTLD_NOW | RTLD_NOLOAD);
    if (!h) h = dlopen(explicit_path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* e = dlerror();
      lib.error = std::string("cannot load NEURO_BLAS_LIB=") + explicit_path + " (" +
                  (e ? e : "dlopen failed") + ")";
      return;
    }
  } else {
    std::string found;
    dl_iterate_phdr(find_loaded, &found);
    if (found.empty()) {
      lib.error = "no OpenBLAS library is loaded in this process (none whose path contains "
                  "\"openblas\"; `import numpy` loads numpy's, or set NEURO_BLAS_LIB)";
      return;
    }
    lib.path = found;
    h = dlopen(found.c_str(), RTLD_NOW | RTLD_NOLOAD);
    if (!h) {
      lib.error = "cannot dlopen the loaded " + found;
      return;
    }
  }
  for (const char* s : {"scipy_cblas_sgemm64_", "cblas_sgemm64_"})
    if (!lib.sgemm64) lib.sgemm64 = reinterpret_cast<OpenBlasLib::Sgemm64>(dlsym(h, s));
  if (!lib.sgemm64)
    for (const char* s : {"scipy_cblas_sgemm", "cblas_sgemm"})
      if (!lib.sgemm32) lib.sgemm32 = reinterpret_cast<OpenBlasLib::Sgemm32>(dlsym(h, s));
  for (const char* s : {"openblas_set_num_threads_local", "scipy_openblas_set_num_threads_local64_",
                        "scipy_openblas_set_num_threads_local"})
    if (!lib.set_threads_local)
      lib.set_threads_local = reinterpret_cast<OpenBlasLib::SetThreads>(dlsym(h, s));
  if (!lib.sgemm64 && !lib.sgemm32)
    lib.error = lib.path + " has no cblas_sgemm symbol (tried scipy_cblas_sgemm64_, "
                "cblas_sgemm64_, scipy_cblas_sgemm, cblas_sgemm)";
  else if (!lib.set_threads_local)
    lib.error = lib.path + " has no openblas_set_num_threads_local (OpenBLAS >= 0.3.27 needed)";
}

}  // namespace detail

// The OpenBLAS library for the current NEURO_BLAS_LIB (resolved once per value of the variable).
inline const OpenBlasLib& openblas() {
  static std::mutex mu;
  static OpenBlasLib lib;
  static std::string key;
  static bool done = false;
  std::lock_guard<std::mutex> lock(mu);
  const char* p = std::getenv("NEURO_BLAS_LIB");
  const std::string now = p ? p : "";
  if (!done || now != key) {
    detail::resolve(lib, p);
    key = now;
    done = true;
  }
  return lib;
}

// The smallest dimension a routed product may have: NEURO_BLAS_MIN_DIM when set (both cases),
// else 64 when op(B) is row-major (B read along its rows, as in y @ R) and 256 when it is
// transposed (dhb @ R^T), measured with 64-row products (benchmarks/blas_crossover.py):
// 64 x 1350 @ 1350 x 4050 OpenBLAS 1.1-1.4x faster, 64 x 4050 @ (1350 x 4050)^T MKL 1.1-1.3x
// faster; from 256 rows on OpenBLAS wins both ways.
inline int64_t min_dim(bool b_transposed = true) {
  const char* v = std::getenv("NEURO_BLAS_MIN_DIM");
  if (!v || !*v) return b_transposed ? 256 : 64;
  char* end = nullptr;
  const long long n = std::strtoll(v, &end, 10);
  TORCH_CHECK(end && *end == 0 && n >= 1, "NEURO_BLAS_MIN_DIM must be an integer >= 1, got '", v,
              "'");
  return n;
}

// Which backend computes a product op(A) [M, K] @ op(B) [K, N] of this dtype (see the header
// comment); b_transposed: op(B) is a transposed view (unit stride along its rows).
inline Backend choose(int64_t M, int64_t N, int64_t K, at::ScalarType dtype,
                      bool b_transposed = true) {
  if (dtype != at::kFloat) return Backend::Torch;
  const char* m = std::getenv("NEURO_BLAS");
  const std::string mode = (m && *m) ? m : "auto";
  if (mode == "torch") return Backend::Torch;
  const bool big = std::min(M, std::min(N, K)) >= min_dim(b_transposed);
  if (mode == "openblas") {
    const OpenBlasLib& lib = openblas();
    TORCH_CHECK(lib.ok(), "NEURO_BLAS=openblas: ", lib.error);
    return big ? Backend::OpenBLAS : Backend::Torch;
  }
  TORCH_CHECK(mode == "auto", "NEURO_BLAS must be auto, torch or openblas, got '", mode, "'");
  if (!big) return Backend::Torch;
  static const bool amd = cpu_is_amd();
  return amd && openblas().ok() ? Backend::OpenBLAS : Backend::Torch;
}

namespace detail {

// (transposed?, leading dimension) of a 2-D view for row-major BLAS, or false when it has no unit
// stride along either dimension.
inline bool blas_layout(const at::Tensor& X, bool& trans, int64_t& ld) {
  const int64_t r = X.size(0), c = X.size(1), s0 = X.stride(0), s1 = X.stride(1);
  if (s1 == 1 && s0 >= std::max<int64_t>(1, c)) {
    trans = false;
    ld = s0;
    return true;
  }
  if (s0 == 1 && s1 >= std::max<int64_t>(1, r)) {
    trans = true;
    ld = s1;
    return true;
  }
  return false;
}

inline void openblas_gemm(const OpenBlasLib& lib, at::Tensor& C, at::Tensor A, at::Tensor B,
                          float alpha, float beta) {
  bool ta = false, tb = false, tc = false;
  int64_t lda = 0, ldb = 0, ldc = 0;
  if (!blas_layout(A, ta, lda)) {
    A = A.contiguous();
    blas_layout(A, ta, lda);
  }
  if (!blas_layout(B, tb, ldb)) {
    B = B.contiguous();
    blas_layout(B, tb, ldb);
  }
  at::Tensor out = C;
  if (!blas_layout(C, tc, ldc)) {  // neither row- nor column-major: work on a contiguous copy
    out = beta == 0.f ? at::empty(C.sizes(), C.options()) : C.contiguous();
    blas_layout(out, tc, ldc);
  }
  int64_t M = A.size(0), N = B.size(1), K = A.size(1);
  const float* pa = A.data_ptr<float>();
  const float* pb = B.data_ptr<float>();
  if (tc) {  // column-major C: compute C^T = op(B)^T op(A)^T in row-major
    std::swap(pa, pb);
    std::swap(lda, ldb);
    const bool t = ta;
    ta = !tb;
    tb = !t;
    std::swap(M, N);
  }
  constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
  const int n = std::max(1, at::get_num_threads());
  LastCall& lc = last_call();
  lc.backend = static_cast<int64_t>(Backend::OpenBLAS);
  lc.requested = n;
  const int prev = lib.set_threads_local(n);
  if (lib.sgemm64) {
    lib.sgemm64(kRowMajor, ta ? kTrans : kNoTrans, tb ? kTrans : kNoTrans, M, N, K, alpha, pa, lda,
                pb, ldb, beta, out.data_ptr<float>(), ldc);
  } else {
    TORCH_CHECK(M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX && lda <= INT32_MAX &&
                    ldb <= INT32_MAX && ldc <= INT32_MAX,
                "neuro::blas: ", lib.path, " takes 32-bit sizes, the product is larger");
    lib.sgemm32(kRowMajor, ta ? kTrans : kNoTrans, tb ? kTrans : kNoTrans, int(M), int(N), int(K),
                alpha, pa, int(lda), pb, int(ldb), beta, out.data_ptr<float>(), int(ldc));
  }
  lc.effective = lib.set_threads_local(prev);  // returns the count the product ran with
  lc.restored = prev;
  if (!out.is_same(C)) C.copy_(out);
}

// whether a 2-D view is stored transposed (unit stride along dimension 0 only)
inline bool transposed(const at::Tensor& X) { return X.stride(1) != 1 && X.stride(0) == 1; }

inline void check(const at::Tensor& C, const at::Tensor& A, const at::Tensor& B) {
  TORCH_CHECK(A.dim() == 2 && B.dim() == 2 && C.dim() == 2, "neuro::blas: A, B and C must be 2-D, got ",
              A.sizes(), ", ", B.sizes(), ", ", C.sizes());
  TORCH_CHECK(A.size(1) == B.size(0) && C.size(0) == A.size(0) && C.size(1) == B.size(1),
              "neuro::blas: shapes do not match: A ", A.sizes(), " @ B ", B.sizes(), " -> C ",
              C.sizes());
  TORCH_CHECK(A.scalar_type() == B.scalar_type() && A.scalar_type() == C.scalar_type(),
              "neuro::blas: A, B and C must have one dtype");
  TORCH_CHECK(A.device().is_cpu() && B.device().is_cpu() && C.device().is_cpu(),
              "neuro::blas: CPU tensors only");
}

}  // namespace detail

// C = alpha * A @ B + beta * C
inline void gemm_out(at::Tensor& C, const at::Tensor& A, const at::Tensor& B, double alpha = 1.0,
                     double beta = 0.0) {
  detail::check(C, A, B);
  const Backend be =
      choose(A.size(0), B.size(1), A.size(1), A.scalar_type(), detail::transposed(B));
  if (be == Backend::OpenBLAS) {
    detail::openblas_gemm(openblas(), C, A, B, static_cast<float>(alpha), static_cast<float>(beta));
    return;
  }
  last_call() = LastCall{static_cast<int64_t>(Backend::Torch), 0, 0, 0};
  if (alpha == 1.0 && beta == 0.0) at::mm_out(C, A, B);
  else at::addmm_out(C, C, A, B, beta, alpha);
}

// C = A @ B
inline void mm_out(at::Tensor& C, const at::Tensor& A, const at::Tensor& B) { gemm_out(C, A, B); }

// C = bias + A @ B, bias [N] added to every row (at::addmm_out's broadcast)
inline void addmm_out(at::Tensor& C, const at::Tensor& bias, const at::Tensor& A,
                      const at::Tensor& B) {
  detail::check(C, A, B);
  if (choose(A.size(0), B.size(1), A.size(1), A.scalar_type(), detail::transposed(B)) ==
      Backend::OpenBLAS) {
    C.copy_(bias.expand_as(C));
    detail::openblas_gemm(openblas(), C, A, B, 1.f, 1.f);
    return;
  }
  last_call() = LastCall{static_cast<int64_t>(Backend::Torch), 0, 0, 0};
  at::addmm_out(C, bias, A, B);
}

}  // namespace blas
}  // namespace neuro
