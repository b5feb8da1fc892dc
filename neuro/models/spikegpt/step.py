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
#: then, the kernel's weight list)
_CACHE: weakref.WeakKeyDictionary[Any, tuple[list[Tensor], list[tuple[int, int]] | None, int,
                                             list[Tensor]]] = (
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


def _weights(model: SpikeGPT) -> list[Tensor]:
    """The flat weight list of ``csrc/step.cpp`` (18 per block, then LN_out and the head), with
    ``-exp(time_decay)`` in place of ``time_decay``.

    Cached per model and rebuilt when a parameter may have changed: another storage or version
    counter (bumped by every in-place update: optimizer steps, ``load_state_dict``), or a
    Parameter registered on any module since (a global registration hook counts them, so a
    replaced Parameter object is seen). Walking the modules costs about as much as a small
    model's whole step, hence the cache."""
    if not _REGISTRATIONS[1]:
        torch.nn.modules.module.register_module_parameter_registration_hook(_on_register)
        _REGISTRATIONS[1] = 1
    hit = _CACHE.get(model)
    if hit is not None and hit[2] == _REGISTRATIONS[0] and hit[1] == _signature(hit[0]):
        return hit[3]
    params = _params(model)
    with torch.no_grad():
        out = [(-torch.exp(p.float()) if i % 18 == 4 and i < len(params) - 3 else p).detach()
               .contiguous() for i, p in enumerate(params)]
    sig = _signature(params)
    if sig is not None:
        _CACHE[model] = (params, sig, _REGISTRATIONS[0], out)
    return out


def _signature(params: list[Tensor]) -> list[tuple[int, int]] | None:
    """``(storage, version)`` of each parameter; ``None`` when one is an inference tensor (made
    under ``torch.inference_mode``: no version counter, so such a model is never cached)."""
    if any(p.is_inference() for p in params):
        return None
    return [(p.data_ptr(), p._version) for p in params]


def fused_step(model: SpikeGPT, token: Tensor, state: SpikeGPTState) -> tuple[Tensor, SpikeGPTState]:
    """One token ``[B]`` through ``model`` from ``state`` -> ``(logits [B, V], new state)``."""
    from .model import BlockState, SpikeGPTState

    cfg = model.config
    with torch.no_grad():
        x = model.emb.weight[token]
        if cfg.binary_embedding:
            x = (x >= 0).to(x.dtype)  # the ATan spike's forward: H(z), H(0) = 1
        ln0 = cast("Block", model.blocks[0]).ln0
        x = F.layer_norm(x, (cfg.n_embd,), ln0.weight, ln0.bias, ln0.eps)
        flat = [t for b in state.blocks for t in (b.att_shift, *b.wkv, b.att_v, b.ffn_shift, b.ffn_v)]
        out = torch.ops.neuro_spikegpt.step(x, _weights(model), flat, 1.0 - 1.0 / cfg.tau,
                                            float(cfg.threshold), bool(cfg.spiking))
    logits, rest = out[0], out[2:]
    blocks = tuple(BlockState(rest[i], WKVState(rest[i + 1], rest[i + 2], rest[i + 3]), rest[i + 4],
                              rest[i + 5], rest[i + 6]) for i in range(0, len(rest), 7))
    return logits, SpikeGPTState(blocks)


__all__ = ["build", "build_error", "fused_step", "load", "usable"]
