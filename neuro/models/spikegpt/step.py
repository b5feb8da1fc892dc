"""The fused streaming step of SpikeGPT: one token for ``B`` sequences in one C++ call.

:meth:`SpikeGPT.step <neuro.models.spikegpt.model.SpikeGPT.step>` uses it when no gradient is
needed (``torch.no_grad`` / ``torch.inference_mode``, or no parameter requires one), the model is
float32 on the CPU and not in training mode with dropout, and the extension ``csrc/step.cpp``
builds; otherwise it runs the generic forward over a chunk of one token (same results).

Why: generating token by token at batch 1 reads every weight once per token (41 M float32
parameters, 164 MB, for the ``46M`` preset), so the step is bound by memory bandwidth, and the
generic path adds a few hundred small torch calls per token (about 1 ms of Python and dispatch)
and a matrix-vector product in MKL's slow orientation for ``(out, in)`` weights. The kernel reads
each weight row once with AVX2 FMA, fuses LayerNorm, token-shift mixing, WKV (float64 state,
``wkv.cpp``'s arithmetic), the gates and both LIF units per row, and returns a new state (the
given one is left unchanged, so a state can be reused).

The channel mixing's value product reads only the rows of ``ffn.value^T`` whose hidden unit
``relu(F_k f_k)^2`` is non-zero (about half of them with random weights; the kernel keeps a
transposed copy of ``ffn.value``, 4 MB per block of the ``46M`` preset).

**Weight formats** (``weights=``): ``"float32"`` (the model's own weights), ``"bfloat16"`` (each
weight rounded to nearest even to bfloat16: half the bytes per token) or ``"int8"`` (symmetric
per output row, ``w = s_row q``, ``q`` in [-127, 127], ``s_row = max|w_row| / 127``; a quarter of
the bytes). Only the 8 matrices of each block and the head are converted; activations, LayerNorm,
the LIFs and the accumulation stay float32 and the WKV state float64, so the results differ from
the model's by the weight rounding alone (``benchmarks/spikegpt_speed.py`` reports the logits'
difference and the held-out bits per character of each format). The converted copies are made
once per model and format, from the cached float32 list, and cached with it.

Shapes: tokens ``[B]`` int64 -> logits ``[B, V]`` float32 and a
:class:`~neuro.models.spikegpt.model.SpikeGPTState` whose fields are ``[B, C]``.
"""
from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from neuro.kernels.extension import extension_error, load_extension

from .wkv import WKVState

if TYPE_CHECKING:
    from .model import Block, SpikeGPT, SpikeGPTState

_SOURCE = Path(__file__).with_name("csrc") / "step.cpp"
#: the weight formats of the fused step (module docstring)
WEIGHT_FORMATS = ("float32", "bfloat16", "int8")
#: positions of the matrices in the kernel's per-block list, and of the head in the whole list
_MATRICES = (9, 10, 11, 12, 15, 16, 17)
_VALUE = 17  # ffn.value, given transposed


def load() -> bool:
    """Build (if needed) and load ``csrc/step.cpp``; whether ``torch.ops.neuro_spikegpt`` exists."""
    return load_extension("neuro_spikegpt", _SOURCE, "step")


#: ``python -m neuro.kernels.build`` protocol: build now, and why not
build = load


def build_error() -> str | None:
    return extension_error("neuro_spikegpt")


def usable(model: SpikeGPT, token: Tensor) -> bool:
    """Whether :func:`fused_step` can run this step (module docstring); ``NEURO_SPIKEGPT_STEP=torch``
    or ``NEURO_DISABLE_EXT=1`` turn it off."""
    if os.environ.get("NEURO_SPIKEGPT_STEP") == "torch" or os.environ.get("NEURO_DISABLE_EXT") == "1":
        return False
    w = model.head.weight
    if w.device.type != "cpu" or w.dtype != torch.float32 or token.device.type != "cpu":
        return False
    if model.training and model.config.dropout > 0:
        return False
    if torch.is_grad_enabled() and any(p.requires_grad for p in model.parameters()):
        return False
    return load()


#: per model: (the parameters read, their (storage, version) when cached, the registration count
#: then, the kernel's weight and scale lists per weight format)
_Lists = tuple[list[Tensor], list[Tensor]]
_CACHE: weakref.WeakKeyDictionary[Any, tuple[list[Tensor], list[tuple[int, int]] | None, int,
                                             dict[str, _Lists]]] = (
    weakref.WeakKeyDictionary())
_REGISTRATIONS = [0, 0]  # [parameters registered anywhere since the hook, hook installed]


def _on_register(module: Any, name: str, param: Any) -> None:
    _REGISTRATIONS[0] += 1  # a Parameter was set on some module: cached lists may be stale


def _params(model: SpikeGPT) -> list[Tensor]:
    """The parameters the step reads, in the kernel's order (``time_decay`` raw)."""
    out: list[Tensor] = []
    for block in cast("list[Block]", model.blocks):
        att, ffn = block.att, block.ffn
        out += [block.ln1.weight, block.ln1.bias, block.ln2.weight, block.ln2.bias,
                att.time_decay, att.time_first, att.time_mix_k, att.time_mix_v, att.time_mix_r,
                att.key.weight, att.value.weight, att.receptance.weight, att.output.weight,
                ffn.time_mix_k, ffn.time_mix_r, ffn.key.weight, ffn.receptance.weight,
                ffn.value.weight]
    return out + [model.ln_out.weight, model.ln_out.bias, model.head.weight]


def _weights(model: SpikeGPT, fmt: str = "float32") -> _Lists:
    """The flat weight list of ``csrc/step.cpp`` (18 per block, then LN_out and the head), with
    ``-exp(time_decay)`` in place of ``time_decay`` and ``ffn.value`` transposed, its matrices in
    format ``fmt``, and the scale list (7 per block and the head; empty tensors unless int8).

    Cached per model and rebuilt when a parameter may have changed: another storage or version
    counter (bumped by every in-place update: optimizer steps, ``load_state_dict``), or a
    Parameter registered on any module since (a global registration hook counts them, so a
    replaced Parameter object is seen). Walking the modules costs about as much as a small
    model's whole step, hence the cache."""
    if not _REGISTRATIONS[1]:
        torch.nn.modules.module.register_module_parameter_registration_hook(_on_register)
        _REGISTRATIONS[1] = 1
    if fmt not in WEIGHT_FORMATS:
        raise ValueError(f"SpikeGPT.step: weights must be one of {WEIGHT_FORMATS}, got {fmt!r}")
    hit = _CACHE.get(model)
    if hit is not None and hit[2] == _REGISTRATIONS[0] and hit[1] == _signature(hit[0]):
        if fmt in hit[3]:
            return hit[3][fmt]
        params, lists = hit[0], hit[3]  # a valid cache: it holds the float32 list
    else:
        params, lists = _params(model), {}
    n = len(params) - 3
    with torch.no_grad():
        if "float32" not in lists:
            out = []
            for i, p in enumerate(params):
                if i < n and i % 18 == 4:
                    p = -torch.exp(p.float())
                elif i < n and i % 18 == _VALUE:
                    p = p.t()
                out.append(p.detach().contiguous())
            lists["float32"] = (out, [torch.empty(0)] * (len(_MATRICES) * (n // 18) + 1))
        if fmt != "float32":
            lists[fmt] = _convert(lists["float32"][0], fmt)  # converted, not rebuilt
    sig = _signature(params)
    if sig is not None:
        _CACHE[model] = (params, sig, _REGISTRATIONS[0], lists)
    return lists[fmt]


def _convert(weights: list[Tensor], fmt: str) -> _Lists:
    """The float32 kernel list with its matrices in ``fmt`` (``"bfloat16"``: round to nearest
    even; ``"int8"``: per-row symmetric ``round(w / s)``, ``s = max|w_row| / 127``, 1 for a zero
    row) and the matching scale list."""
    n = len(weights) - 3
    mats = [b + j for b in range(0, n, 18) for j in _MATRICES] + [len(weights) - 1]
    out, scales = list(weights), []
    for i in mats:
        w = weights[i]
        if fmt == "bfloat16":
            out[i] = w.to(torch.bfloat16).contiguous()
            scales.append(torch.empty(0))
        else:
            s = w.abs().amax(dim=1) / 127.0
            s = torch.where(s > 0, s, torch.ones_like(s))
            out[i] = torch.round(w / s[:, None]).clamp_(-127, 127).to(torch.int8).contiguous()
            scales.append(s.float().contiguous())
    return out, scales


def _signature(params: list[Tensor]) -> list[tuple[int, int]] | None:
    """``(storage, version)`` of each parameter; ``None`` when one is an inference tensor (made
    under ``torch.inference_mode``: no version counter, so such a model is never cached)."""
    try:  # one pass: reading an inference tensor's version raises (about 0.1 ms less per token)
        return [(p.data_ptr(), p._version) for p in params]
    except RuntimeError:
        return None


def fused_step(model: SpikeGPT, token: Tensor, state: SpikeGPTState, weights: str = "float32"
               ) -> tuple[Tensor, SpikeGPTState]:
    """One token ``[B]`` through ``model`` from ``state`` -> ``(logits [B, V], new state)``, the
    matrices read in format ``weights`` (:data:`WEIGHT_FORMATS`)."""
    from .model import BlockState, SpikeGPTState

    cfg = model.config
    with torch.no_grad():
        x = model.emb.weight[token]
        if cfg.binary_embedding:
            x = (x >= 0).to(x.dtype)  # the ATan spike's forward: H(z), H(0) = 1
        ln0 = cast("Block", model.blocks[0]).ln0
        x = F.layer_norm(x, (cfg.n_embd,), ln0.weight, ln0.bias, ln0.eps)
        flat = [t for b in state.blocks for t in (b.att_shift, *b.wkv, b.att_v, b.ffn_shift, b.ffn_v)]
        w, scales = _weights(model, weights)
        out = torch.ops.neuro_spikegpt.step(x, w, scales, flat, 1.0 - 1.0 / cfg.tau,
                                            float(cfg.threshold), bool(cfg.spiking))
    logits, rest = out[0], out[2:]
    blocks = tuple(BlockState(rest[i], WKVState(rest[i + 1], rest[i + 2], rest[i + 3]), rest[i + 4],
                              rest[i + 5], rest[i + 6]) for i in range(0, len(rest), 7))
    return logits, SpikeGPTState(blocks)


__all__ = ["WEIGHT_FORMATS", "build", "build_error", "fused_step", "load", "usable"]
