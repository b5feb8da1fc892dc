"""Synapse layers over time-first tensors."""
from __future__ import annotations

from torch import Tensor, nn

from .. import kernels


class Linear(nn.Linear):
    """``nn.Linear`` over the last dimension of ``[T, B, ..., in]`` that exploits spike sparsity.

    When the input is float32 on the CPU and at most 20 % of it is non-zero (spikes; 12 % for
    fewer than 64 outputs, see ``neuro.kernels.spike_linear.DENSITY_LIMIT``), the
    event-driven kernel adds one weight row per input spike instead of running a dense GEMM; the
    result equals ``nn.Linear`` up to float summation order. Parameters, initialisation and
    ``state_dict`` are exactly ``nn.Linear``'s.
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear({self.in_features} -> {self.out_features}): input's last dimension is "
                f"{x.shape[-1]}, shape {tuple(x.shape)}"
            )
        return kernels.spike_linear(x, self.weight, self.bias, cpp=kernels.use_cpp(x))

    def describe(self) -> dict:
        return {"kind": "Linear", "in_features": self.in_features,
                "out_features": self.out_features, "bias": self.bias is not None}
