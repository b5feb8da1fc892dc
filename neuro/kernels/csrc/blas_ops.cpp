// torch.ops.neuro_blas: the Python face of neuro/kernels/csrc/blas.h (neuro/kernels/blas.py).
#include <torch/library.h>

#include <string>
#include <tuple>

#include "blas.h"

namespace {

// out = alpha * a @ b + beta * out (in place)
void gemm_out(const at::Tensor& a, const at::Tensor& b, const at::Tensor& out, double alpha,
              double beta) {
  at::Tensor c = out;
  neuro::blas::gemm_out(c, a, b, alpha, beta);
}

// out = bias + a @ b (in place)
void addmm_out(const at::Tensor& bias, const at::Tensor& a, const at::Tensor& b,
               const at::Tensor& out) {
  at::Tensor c = out;
  neuro::blas::addmm_out(c, bias, a, b);
}

// 0: torch, 1: OpenBLAS, for a product [M, K] @ [K, N] of float32 (float64 if not is_float32),
// op(B) a transposed view or not
int64_t choose(int64_t M, int64_t N, int64_t K, bool is_float32, bool b_transposed) {
  return static_cast<int64_t>(
      neuro::blas::choose(M, N, K, is_float32 ? at::kFloat : at::kDouble, b_transposed));
}

// (library path, why it cannot be used or "", CPU is AMD, smallest routed dimension for a
// transposed op(B), for a row-major one)
std::tuple<std::string, std::string, bool, int64_t, int64_t> info() {
  const auto& lib = neuro::blas::openblas();
  return {lib.path, lib.ok() ? std::string() : lib.error, neuro::blas::cpu_is_amd(),
          neuro::blas::min_dim(true), neuro::blas::min_dim(false)};
}

// (backend, threads requested, threads OpenBLAS ran with, threads restored) of the last call
std::tuple<int64_t, int64_t, int64_t, int64_t> last_call() {
  const auto& c = neuro::blas::last_call();
  return {c.backend, c.requested, c.effective, c.restored};
}

}  // namespace

TORCH_LIBRARY(neuro_blas, m) {
  m.def("gemm_out(Tensor a, Tensor b, Tensor(c!) out, float alpha, float beta) -> ()", &gemm_out);
  m.def("addmm_out(Tensor bias, Tensor a, Tensor b, Tensor(c!) out) -> ()", &addmm_out);
  m.def("choose", &choose);
  m.def("info", &info);
  m.def("last_call", &last_call);
}
