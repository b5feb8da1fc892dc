"""What a checkpoint holds, read from its safetensors header alone (no torch, no tensor data).

A safetensors file starts with an 8-byte little-endian header length and a JSON header:
``{"__metadata__": {...strings...}, "<tensor>": {"dtype": "F32", "shape": [...],
"data_offsets": [a, b]}, ...}``. ``neuro info`` reads only that, so it answers in a fraction of a
second even for large models; loading the weights (:func:`neuro.checkpoint.read_checkpoint`) checks
the values too.
"""
from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

#: safetensors dtype code -> numpy-style name
DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
          "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
          "BOOL": "bool"}
MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit


def read_header(path: str | Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``(meta, tensors)``: the neuro metadata (``model``, ``config``, ``info`` parsed from JSON)
    and ``{name: {"shape": [...], "dtype": "float32"}}``. Raises ``ValueError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such checkpoint file")
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path}: not a readable safetensors checkpoint (file shorter than 8 bytes)")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER:
            raise ValueError(f"{path}: not a readable safetensors checkpoint (header length {n})")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable safetensors checkpoint (header is not JSON: {exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: not a readable safetensors checkpoint (header is not a JSON object)")
    meta_raw = header.pop("__metadata__", None) or {}
    if meta_raw.get("neuro_format") != "1":
        raise ValueError(f"{path}: not a neuro checkpoint (metadata neuro_format="
                         f"{meta_raw.get('neuro_format')!r}, expected '1')")
    try:
        meta = {"model": meta_raw["model"], "config": json.loads(meta_raw["config"]),
                "info": json.loads(meta_raw.get("info", "{}"))}
    except (KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: corrupt neuro checkpoint metadata ({exc})") from None
    tensors = {}
    for name, t in header.items():
        if not isinstance(t, dict) or "shape" not in t or "dtype" not in t:
            raise ValueError(f"{path}: tensor {name!r} has no shape/dtype in the header")
        tensors[name] = {"shape": list(t["shape"]), "dtype": DTYPES.get(t["dtype"], t["dtype"])}
    return meta, tensors


def graph_summary(config: dict[str, Any]) -> dict[str, Any]:
    """A readable summary of an imported (``graph``) checkpoint's config: dt, each node's kind
    and its array shapes, the edges, the number format, where it came from."""
    graph = config.get("graph", {})
    arrays = config.get("arrays", {})
    nodes = {}
    for name, nd in graph.get("nodes", {}).items():
        parts = [str(nd.get("type", nd.get("kind", "?")))]
        if nd.get("shape") is not None:
            parts.append(f"shape {list(nd['shape'])}")
        for field, value in nd.items():
            if isinstance(value, dict) and "$array" in value:
                shape = arrays.get(value["$array"], {}).get("shape")
                if shape:  # scalars are not worth a line
                    parts.append(f"{field} {shape}")
            elif field in ("reset", "reset_timing") and value not in ("zero", "immediate"):
                parts.append(f"{field}={value}")
        nodes[name] = ", ".join(parts)
    return {"dt": graph.get("dt"),
            "format": graph.get("metadata", {}).get("format", {}).get("name", "float"),
            "nodes": nodes,
            "edges": [f"{a} -> {b}" for a, b in graph.get("edges", [])]}


def describe_checkpoint(path: str | Path) -> dict[str, Any]:
    """``neuro info``'s description of a checkpoint (a JSON-able dict)."""
    meta, tensors = read_header(path)
    desc: dict[str, Any] = {
        "kind": "checkpoint", "path": str(path), "model": meta["model"],
        "parameters": int(sum(math.prod(t["shape"]) for t in tensors.values())),
    }
    if meta["model"] == "graph":
        desc["graph"] = graph_summary(meta["config"])
    else:
        desc["config"] = meta["config"]
    desc["info"] = meta["info"]
    desc["tensors"] = tensors
    return desc


__all__ = ["describe_checkpoint", "graph_summary", "read_header"]
