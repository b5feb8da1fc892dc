"""Load state dicts of the reference implementation (ridgerchu/SpikeGPT, ``src/model.py``).

The reference names its parameters ``emb.weight``, ``blocks.{i}.ln0/ln1/ln2.{weight,bias}``,
``blocks.{i}.att.{time_decay,time_first,time_mix_k,time_mix_v,time_mix_r}``,
``blocks.{i}.att.{key,value,receptance,output}.weight``,
``blocks.{i}.ffn.{time_mix_k,time_mix_r}``, ``blocks.{i}.ffn.{key,receptance,value}.weight``,
``ln_out.{weight,bias}`` and ``head.weight``; :class:`~neuro.models.spikegpt.model.SpikeGPT` uses
the same names, so loading is a checked copy. Files are read without executing code:
safetensors, or a ``.pth`` through ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from .config import SpikeGPTConfig
from .model import SpikeGPT


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a ``.safetensors`` file or of a ``.pth``/``.pt`` file (``weights_only``)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - report any unreadable file the same way
        raise ValueError(f"{path}: not a weights-only torch file ({exc})") from None
    if not isinstance(sd, dict) or not all(isinstance(v, Tensor) for v in sd.values()):
        raise ValueError(f"{path}: expected a dict of tensors (a state dict)")
    return sd


def infer_config(sd: dict[str, Tensor], **overrides: object) -> SpikeGPTConfig:
    """The :class:`SpikeGPTConfig` whose model has the shapes of reference state dict ``sd``."""
    if "emb.weight" not in sd or "blocks.0.ffn.key.weight" not in sd:
        raise ValueError("not a SpikeGPT state dict: emb.weight / blocks.0.ffn.key.weight missing")
    V, C = sd["emb.weight"].shape
    layers = {int(k.split(".")[1]) for k in sd if k.startswith("blocks.")}
    hidden = sd["blocks.0.ffn.key.weight"].shape[0]
    if hidden % C:
        raise ValueError(f"ffn.key has {hidden} rows, not a multiple of n_embd={C}")
    kw: dict[str, object] = dict(vocab_size=int(V), n_embd=int(C), n_layer=len(layers),
                                 ffn_mult=hidden // C)
    kw.update(overrides)
    return SpikeGPTConfig(**kw)  # type: ignore[arg-type]


def load_reference_state_dict(model: SpikeGPT, sd: dict[str, Tensor]) -> None:
    """Copy the reference's tensors ``sd`` into ``model``.

    Every learnable parameter must be present with its shape (``time_mix_*`` may be ``[C]`` or
    ``[1, 1, C]``); an unknown or missing name, or a shape mismatch, raises ``ValueError`` naming
    it. The LIF units have no learnable parameters in the reference (tau, threshold fixed), so
    their buffers keep the model's values.
    """
    params = dict(model.named_parameters())
    unknown = sorted(set(sd) - set(params))
    missing = sorted(set(params) - set(sd))
    if unknown or missing:
        raise ValueError(f"reference state dict does not fit this SpikeGPT: unknown {unknown[:8]}"
                         f", missing {missing[:8]}")
    with torch.no_grad():
        for name, p in params.items():
            t = sd[name]
            if t.numel() != p.numel() or (t.shape != p.shape and p.shape[:-1] != (1, 1)):
                raise ValueError(f"{name}: shape {tuple(t.shape)} does not fit the model's "
                                 f"{tuple(p.shape)}")
            p.copy_(t.reshape(p.shape).to(p.dtype))


def load_reference(path: str | Path, **overrides: object) -> SpikeGPT:
    """A :class:`SpikeGPT` built from the shapes in reference weights ``path`` and holding them."""
    sd = read_state_dict(path)
    model = SpikeGPT(infer_config(sd, **overrides))
    load_reference_state_dict(model, sd)
    return model


__all__ = ["infer_config", "load_reference", "load_reference_state_dict", "read_state_dict"]
