"""``DelayedLinear``: a linear synapse layer with a learnable delay per synapse (DCLS).

Hammouamri, Khalfaoui-Hassani & Masquelier (ICLR 2024): each synapse ``i -> o`` has a weight
``W[o, i]`` and a real-valued position ``P[o, i]`` in ``[-K//2, K//2]`` (``K = max_delay`` steps,
odd). Training spreads each weight over the ``K`` taps of a temporal kernel with a Gaussian::

    c = P + K//2 ;  sigma_eff = |sigma| + 0.27
    g[k] = exp(-0.5 ((k - c) / sigma_eff)^2) ;  kernel[o, i, k] = W[o, i] g[k] / (sum_k g[k] + 1e-7)

and the layer is a cross-correlation over time of the input padded with ``K - 1`` zero steps on
the left and ``(K - 1) // 2`` on the right, so tap ``k`` is the delay ``d = K - 1 - k`` and the
output has ``T + (K - 1) // 2`` steps. This is ``DCLS.construct.modules.Dcls1d`` (version
``"gauss"``) as the reference uses it (tests compare the kernel with ``Dcls1d.DCK``).

``sigma`` follows the reference schedule (:meth:`DelayedLinear.sigma_at`): it starts at ``K // 2``
and shrinks geometrically to 0.23 by epoch ``epochs // 4``. For evaluation and export the
positions are rounded (:meth:`DelayedLinear.integer_delays`, the ``"max"`` kernel with
``sigma = 0``): every synapse then has an exact integer delay ``D = K // 2 - round(P)`` in
``[0, K - 1]`` steps, and the layer computes ``y[t, o] = sum_i W[o, i] x[t - D[o, i], i] + b[o]``
with :func:`neuro.kernels.delayed_affine`, the same function the graph executor uses, so the
lowered graph gives identical spikes. The float positions are kept for training.

``delay_limit`` (steps, >= 1) restricts the learnable delays to ``[0, delay_limit]`` for targets
with a shorter delay line (Loihi 2 DelayDense: 62 steps; SpiNNaker: 16 slots natively).

On CPU (float32) training computes the convolution with :func:`neuro.kernels.dcls.dcls_conv`:
event-driven when the input is sparse (SHD frames, hidden spikes: only the non-zero inputs are
visited), else as products of DFTs over time; both equal the ``conv1d`` up to float32 rounding.
On GPU and for other dtypes the dense ``conv1d`` runs.

Shapes: input ``[T, B, in]``, output ``[T + right_padding, B, out]`` (time first; the reference's
``right_padding = (K - 1) // 2`` is the default). The graph IR is the streaming form: running a
lowered network on the input followed by ``R`` zero steps equals running the module, with
``right_padding=0`` in every layer, on the same padded input.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..kernels import delayed_affine
from ..kernels.dcls import dcls_conv


class DelayedLinear(nn.Module):
    """Per-synapse weight + learnable delay (see the module docstring)."""

    sigma: Tensor  # buffer registered in __init__

    def __init__(self, in_features: int, out_features: int, max_delay: int, *, bias: bool = False,
                 delay_limit: int | None = None, sigma: float | None = None,
                 right_padding: int | None = None) -> None:
        super().__init__()
        if not isinstance(max_delay, int) or max_delay < 1 or max_delay % 2 == 0:
            raise ValueError(f"DelayedLinear: max_delay must be an odd number of steps >= 1, got {max_delay!r}")
        if delay_limit is not None and (not isinstance(delay_limit, int) or delay_limit < 1):
            raise ValueError(f"DelayedLinear: delay_limit must be an int >= 1 (steps), got {delay_limit!r}")
        self.in_features, self.out_features, self.max_delay = in_features, out_features, max_delay
        self.delay_limit = min(delay_limit, max_delay - 1) if delay_limit is not None else max_delay - 1
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.P = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.right_padding = (max_delay - 1) // 2 if right_padding is None else int(right_padding)
        if self.right_padding < 0:
            raise ValueError(f"DelayedLinear: right_padding must be >= 0, got {right_padding}")
        self.register_buffer("sigma", torch.tensor(float(max_delay // 2 if sigma is None else sigma)))
        self.integer = False  # set by integer_delays(); the kernel is then one-hot
        self.reset_parameters()

    # -- parameters -------------------------------------------------------------------------
    @property
    def half(self) -> int:  # type: ignore[override]  # shadows torch's Module.half() (public name kept)
        return self.max_delay // 2

    def reset_parameters(self) -> None:
        """Weights: kaiming uniform (relu gain), as the reference; positions uniform in range."""
        nn.init.kaiming_uniform_(self.weight, nonlinearity="relu")
        with torch.no_grad():
            lo = self.half - self.delay_limit
            self.P.uniform_(lo, self.half)

    def clamp_positions(self) -> None:
        """Keep positions in ``[K//2 - delay_limit, K//2]`` (call after every optimizer step)."""
        with torch.no_grad():
            self.P.clamp_(self.half - self.delay_limit, self.half)

    @staticmethod
    def sigma_at(epoch: int, max_delay: int, epochs: int, final: float = 0.23) -> float:
        """The reference schedule: ``sigInit * alpha^min(epoch, final_epoch)`` with
        ``sigInit = K // 2``, ``final_epoch = epochs // 4``, ``alpha = (final / sigInit)^(1/final_epoch)``."""
        sig0 = max_delay // 2
        final_epoch = epochs // 4
        if sig0 <= final or final_epoch == 0:
            return float(min(sig0, final)) if final_epoch == 0 else float(sig0)
        alpha = (final / sig0) ** (1 / final_epoch)
        return float(sig0 * alpha ** min(epoch, final_epoch))

    def set_sigma(self, value: float) -> None:
        self.sigma.fill_(float(value))

    # -- kernel -----------------------------------------------------------------------------
    def kernel(self, version: str = "gauss") -> Tensor:
        """Dense temporal kernel ``[out, in, K]`` (``"gauss"`` or ``"max"``, as Dcls1d)."""
        k = torch.arange(self.max_delay, dtype=self.P.dtype, device=self.P.device)
        diff = k - (self.P + self.half).unsqueeze(-1)
        if version == "gauss":
            g = torch.exp(-0.5 * (diff / (self.sigma.abs() + 0.27)) ** 2)
        elif version == "max":
            g = torch.relu(self.sigma.abs() + 1.0 - diff.abs())
        else:
            raise ValueError(f"kernel version must be 'gauss' or 'max', got {version!r}")
        g = g / (g.sum(-1, keepdim=True) + 1e-7)
        return g * self.weight.unsqueeze(-1)

    def delays(self) -> Tensor:
        """Integer delays ``[out, in]`` in steps of the rounded positions (``K//2 - round(P)``)."""
        return (self.half - torch.round(self.P.detach())).to(torch.int64).clamp(0, self.max_delay - 1)

    def integer_delays(self, on: bool = True) -> DelayedLinear:
        """Switch to exact integer delays (evaluation/export) or back to the Gaussian kernel."""
        self.integer = bool(on)
        return self

    # -- forward ----------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[-1] != self.in_features:
            raise ValueError(f"DelayedLinear({self.in_features} -> {self.out_features}): input must be "
                             f"[T, B, {self.in_features}], got {tuple(x.shape)}")
        right = self.right_padding
        if self.integer:
            x = F.pad(x, (0, 0, 0, 0, 0, right))  # right padding: zero steps at the end
            return delayed_affine(x, self.weight, self.delays(), self.bias)
        # conv1d over the input padded with K-1 steps left, `right` steps right (on CPU: the
        # event-driven or spectral path of neuro.kernels.dcls)
        return dcls_conv(x, self.kernel("gauss"), self.bias, right)

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, max_delay={self.max_delay}, "
                f"delay_limit={self.delay_limit}, bias={self.bias is not None}, "
                f"sigma={float(self.sigma):.3g}, integer={self.integer}")


__all__ = ["DelayedLinear"]
