"""Checkpoints: one safetensors file with the model's tensors and its config as JSON metadata.

Loading never executes code (safetensors holds only tensors and a string map). Writes are atomic:
the file is written next to its destination under a temporary name and renamed into place.

Metadata keys (all strings): ``neuro_format`` ("1"), ``model`` (a name in
``neuro.models.BUILDERS``), ``config`` (JSON), ``info`` (JSON: training metrics, seed, versions,
``torch_threads`` and ``deterministic``: what the weights' reproducibility depends on).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .atomic import atomic_write
from .limits import check_array_size
from .safeio import parse_json

FORMAT = "1"
_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2,
             "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def save_checkpoint(path: str | Path, model: nn.Module, *, name: str, config: dict[str, Any],
                    info: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s state dict and config to ``path`` (a ``.safetensors`` file), atomically."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    info = {**runtime_info(), **(info or {})}
    meta = {
        "neuro_format": FORMAT,
        "model": name,
        "config": json.dumps(config),
        "info": json.dumps(info),
    }
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def runtime_info() -> dict[str, Any]:
    """What decides whether training is reproducible, recorded in every checkpoint's ``info``:
    torch's intra-op thread count and whether deterministic algorithms were on (README:
    "Determinism")."""
    return {"torch_threads": torch.get_num_threads(),
            "deterministic": torch.are_deterministic_algorithms_enabled()}


def read_safetensors(path: str | Path, what: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(tensors, metadata)`` of a safetensors file, every tensor's declared size checked against
    the limits (``neuro.limits``) before any is read; ``ValueError`` naming the file (as a
    ``what``: "checkpoint", "training-state file") when it cannot be read."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            for k in f.keys():  # noqa: SIM118 (not a dict): declared sizes before any read
                sl = f.get_slice(k)
                check_array_size(f"{path}: tensor {k!r}", tuple(sl.get_shape()),
                                 _ITEMSIZE.get(sl.get_dtype(), 8))
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable safetensors {what} ({exc})") from None
    return tensors, meta


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return ``(tensors, meta)`` with ``meta = {"model", "config", "info"}`` (parsed JSON).

    Raises ``ValueError`` naming the file and the problem for missing, corrupt or foreign files
    and for non-finite values in any tensor.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such checkpoint file")
    tensors, meta_raw = read_safetensors(path, "checkpoint")
    if meta_raw.get("neuro_format") != FORMAT:
        raise ValueError(
            f"{path}: not a neuro checkpoint (metadata neuro_format={meta_raw.get('neuro_format')!r}, "
            f"expected {FORMAT!r})"
        )
    try:
        meta = {
            "model": meta_raw["model"],
            "config": parse_json(meta_raw["config"], f"{path}: metadata 'config'"),
            "info": parse_json(meta_raw.get("info", "{}"), f"{path}: metadata 'info'"),
        }
    except KeyError as exc:
        raise ValueError(f"{path}: corrupt neuro checkpoint metadata (no {exc})") from None
    if not isinstance(meta["config"], dict) or not isinstance(meta["info"], dict):
        raise ValueError(f"{path}: corrupt neuro checkpoint metadata ('config' and 'info' must "
                         "be JSON objects)")
    for key, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{path}: tensor {key!r} holds NaN or infinite values")
    return tensors, meta


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model named in the checkpoint and load its weights; return ``(model, meta)``."""
    from .models import BUILDERS

    tensors, meta = read_checkpoint(path)
    if meta["model"] not in BUILDERS:
        raise ValueError(f"{path}: unknown model {meta['model']!r}; known: {sorted(BUILDERS)}")
    build = BUILDERS[meta["model"]]
    try:
        model = build(meta["config"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: bad config for {meta['model']}: {exc}") from None
    optional = getattr(model, "optional_tensor", None)  # e.g. the pruning masks of an EGRU model
    _check_shapes(path, meta["model"], model.state_dict(),
                  {k: v for k, v in tensors.items() if not (optional and optional(k))})
    model.load_state_dict(tensors)
    return model, meta


def _check_shapes(path: Path | str, name: str, expected: dict[str, torch.Tensor],
                  tensors: dict[str, torch.Tensor]) -> None:
    """The checkpoint's tensors are exactly those of the model its config describes."""
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise ValueError(f"{path}: tensors do not match {name} (missing {missing}, unexpected {extra})")
    for k, v in expected.items():
        if tuple(v.shape) != tuple(tensors[k].shape):
            raise ValueError(
                f"{path}: tensor {k!r} has shape {tuple(tensors[k].shape)}, the config needs {tuple(v.shape)}"
            )


def count_parameters(tensors: dict[str, torch.Tensor]) -> int:
    return int(sum(math.prod(t.shape) for t in tensors.values()))
