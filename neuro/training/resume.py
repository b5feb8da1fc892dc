"""Training state beside a checkpoint, so that ``--resume`` continues a run where it stopped.

``train_state.safetensors`` sits next to ``model.safetensors`` and holds what the weights alone
do not: the optimizer's per-parameter state (AdamW's ``exp_avg``, ``exp_avg_sq`` and ``step``
tensors, as ``state.<param index>.<key>``), its parameter groups (learning rate, betas, weight
decay; JSON metadata), the number of optimizer steps taken, the planned total, and the training
options that decide the rest of the run (seed, batch size, schedule: JSON metadata ``options``).
Like a checkpoint it is safetensors: reading it never executes code, declared sizes are checked
before any tensor is read, and it is written atomically. The checkpoint beside it records the
same ``step`` in its ``info``; a pair whose steps differ (a crash between the two writes) is
refused.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write
from ..safeio import parse_json

STATE_FILE = "train_state.safetensors"
FORMAT = "1"


def state_path(checkpoint: str | Path) -> Path:
    """The training-state file that belongs to ``checkpoint`` (same folder)."""
    return Path(checkpoint).with_name(STATE_FILE)


def save_train_state(path: str | Path, optimizer: torch.optim.Optimizer, *, step: int,
                     steps: int, options: dict[str, Any]) -> Path:
    """Write ``optimizer``'s state after ``step`` of ``steps`` optimizer steps, and the training
    ``options`` (JSON-able), to ``path`` (module docstring)."""
    from safetensors.torch import save_file

    sd = optimizer.state_dict()
    tensors = {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"state.{idx}.{key}"] = t.detach().cpu().contiguous()
    meta = {"neuro_train_state": FORMAT, "step": str(int(step)), "steps": str(int(steps)),
            "param_groups": json.dumps(sd["param_groups"]), "options": json.dumps(options)}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def peek_train_state(path: str | Path) -> dict[str, Any]:
    """``{"step", "steps", "options"}`` of a training-state file, without the optimizer (what a
    resumed run needs to know before it builds one)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path}: not a readable training-state file ({exc})") from None
    return _meta(path, raw)[0]


def _meta(path: Path, raw: dict[str, str]) -> tuple[dict[str, Any], list[Any]]:
    if raw.get("neuro_train_state") != FORMAT:
        raise ValueError(f"{path}: not a neuro training-state file")
    try:
        step, steps = int(raw["step"]), int(raw["steps"])
        groups = parse_json(raw["param_groups"], f"{path}: metadata 'param_groups'")
        options = parse_json(raw["options"], f"{path}: metadata 'options'")
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: corrupt training-state metadata ({exc})") from None
    if not isinstance(groups, list) or not isinstance(options, dict) or not 0 <= step <= steps:
        raise ValueError(f"{path}: corrupt training-state metadata")
    return {"step": step, "steps": steps, "options": options}, groups


def load_train_state(path: str | Path, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore ``optimizer`` from ``path``; returns ``{"step", "steps", "options"}``. Raises
    ``ValueError`` naming the file for a foreign or corrupt file, or one whose parameter groups
    or tensor shapes do not match ``optimizer``'s parameters."""
    from ..checkpoint import read_safetensors

    path = Path(path)
    tensors, raw = read_safetensors(path, "training-state file")
    info, groups = _meta(path, raw)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    mine = [len(g["params"]) for g in optimizer.param_groups]
    theirs = [len(g.get("params", [])) if isinstance(g, dict) else -1 for g in groups]
    if mine != theirs:
        raise ValueError(f"{path}: the optimizer has parameter groups of sizes {mine}, the file "
                         f"{theirs}: it belongs to another model")
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        parts = key.split(".")
        if len(parts) != 3 or parts[0] != "state" or not parts[1].isdigit():
            raise ValueError(f"{path}: unexpected tensor {key!r}")
        idx = int(parts[1])
        if idx >= len(params):
            raise ValueError(f"{path}: tensor {key!r} names parameter {idx}; the model has "
                             f"{len(params)}")
        if parts[2] != "step" and tuple(t.shape) != tuple(params[idx].shape):
            raise ValueError(f"{path}: tensor {key!r} has shape {tuple(t.shape)}, parameter "
                             f"{idx} has {tuple(params[idx].shape)}")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{path}: tensor {key!r} holds NaN or infinite values")
        state.setdefault(idx, {})[parts[2]] = t
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: parameter groups do not fit the optimizer ({exc})") from None
    return info


__all__ = ["STATE_FILE", "load_train_state", "peek_train_state", "save_train_state", "state_path"]
