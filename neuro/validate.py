"""The validators every entry point shares: input spikes, and the shape of JSON documents.

* :func:`check_spikes` is the one input-spike check. ``neuro run/verify/energy/export --input``
  (through :func:`neuro.datasets.load_spikes`) and every hardware backend's ``run`` (through
  :func:`neuro.hardware.base.as_int_spikes`) call it, so a value a target would wrap, round or
  overflow never reaches it: dtype kind bool/int/uint/float only, finite, every value an integer
  in ``[0, max_count]`` (``max_count = 1``: exactly 0/1), shape ``[T, *F]`` or ``[T, B, *F]``
  with ``T >= 1``, ``B >= 1`` and every feature dimension ``>= 1``, size within
  ``NEURO_MAX_ELEMENTS``/``NEURO_MAX_ARRAY_BYTES``.
* :func:`check_json` checks a parsed JSON document against a small schema written as Python
  values (below) and names the file and the key path of the first mismatch. graph.json,
  manifest.json, model configs, cost tables and the targets' own JSON files are checked with it
  before use, so a list where an object belongs or a missing key is one clear error, not a
  ``KeyError`` deep inside.

Schema language of :func:`check_json`: a type (``str``, ``int``, ``float`` (int or float, not
bool), ``bool``, ``dict``, ``list``, ``object`` (anything)) or a tuple of types; ``{"key": spec,
"?opt": spec}`` (an object with required and optional keys; other keys allowed); ``{str: spec}``
(an object whose every value matches); ``[spec]`` (a list whose every item matches).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .limits import check_array_size

#: dtype kinds accepted as spikes: bool, signed and unsigned integers, real floats
SPIKE_KINDS = "biuf"
#: the largest spike count the Python API of any target takes (datasets store uint8 counts)
SPIKE_COUNT_MAX = 255


class SpikeError(ValueError):
    """Input spikes of the wrong type, shape or values."""


class SchemaError(ValueError):
    """A JSON document does not have the expected shape."""


def check_spike_values(x: Any, where: str = "spikes", *, max_count: int = 1) -> np.ndarray:
    """``x`` as an array, checked: dtype kind, size limits, finite, integers in
    ``[0, max_count]``. Returns the array unchanged (not cast), so the caller's cast is exact."""
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise SpikeError(f"{where}: not an array ({exc})") from None
    if arr.dtype.kind not in SPIKE_KINDS:
        raise SpikeError(f"{where}: dtype {arr.dtype} is not allowed for spikes (bool, integer "
                         "or real float)")
    check_array_size(where, arr.shape, arr.dtype.itemsize)
    if arr.size == 0:
        return arr
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise SpikeError(f"{where}: holds NaN or infinite values")
    if arr.dtype.kind == "b":
        return arr
    lo, hi = arr.min(), arr.max()
    if lo < 0:
        raise SpikeError(f"{where}: holds negative values (minimum {lo}); spikes are 0/1")
    if hi > max_count:
        allowed = "0 or 1" if max_count == 1 else f"integers 0..{max_count}"
        raise SpikeError(f"{where}: holds values up to {hi}; spikes must be {allowed}")
    if arr.dtype.kind == "f" and not np.array_equal(arr, np.floor(arr)):
        bad = arr[arr != np.floor(arr)].flat[0]
        allowed = "0 or 1" if max_count == 1 else f"integers 0..{max_count}"
        raise SpikeError(f"{where}: holds the value {bad}; spikes must be {allowed}")
    return arr


def check_spikes(x: Any, where: str = "spikes", *, feature_shape: tuple[int, ...] | None = None,
                 max_count: int = 1) -> np.ndarray:
    """Check input spikes shaped ``[T, *F]`` or ``[T, B, *F]`` and return them as
    ``[T, B, *F]`` (a view; dtype unchanged).

    ``feature_shape``: the expected ``F`` (the model's input shape); ``None`` accepts one
    feature dimension of any size (``[T, N]`` or ``[T, B, N]``). ``T``, ``B`` and every feature
    dimension must be at least 1. Values: :func:`check_spike_values`.
    """
    arr = check_spike_values(x, where, max_count=max_count)
    nf = 1 if feature_shape is None else len(feature_shape)
    if arr.ndim not in (nf + 1, nf + 2):
        want = "N" if feature_shape is None else ", ".join(map(str, feature_shape))
        raise SpikeError(f"{where}: expected [T, {want}] or [T, B, {want}], got "
                         f"{tuple(arr.shape)}")
    if arr.ndim == nf + 1:
        arr = arr[:, None]
    T, B, feat = arr.shape[0], arr.shape[1], tuple(arr.shape[2:])
    if feature_shape is not None and feat != tuple(feature_shape):
        want = ", ".join(map(str, feature_shape))
        raise SpikeError(f"{where}: expected [T, {want}] or [T, B, {want}], got "
                         f"{tuple(np.shape(x))}")
    if T < 1:
        raise SpikeError(f"{where}: no time steps (T = 0, shape {tuple(np.shape(x))})")
    if B < 1:
        raise SpikeError(f"{where}: no samples (B = 0, shape {tuple(np.shape(x))})")
    if any(d < 1 for d in feat):
        raise SpikeError(f"{where}: no input channels (shape {tuple(np.shape(x))})")
    return arr


# ------------------------------------------------------------------------ annotations
def matches_annotation(value: Any, hint: Any) -> bool:
    """Whether ``value`` (read from a file) fits the type annotation ``hint`` of a dataclass
    field: ``int`` (not bool), ``float`` (any real number), ``str``, ``bool``, ``np.ndarray``
    (a numeric array, number or nested list of numbers), ``tuple[int, ...]``/``list[X]``
    (lists of matching items), ``dict[...]``, ``Literal[...]``, unions and ``None``; any
    other annotation accepts the value."""
    import types
    import typing

    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(matches_annotation(value, h) for h in typing.get_args(hint))
    if hint is Any or hint is object:
        return True
    if hint is type(None) or hint is None:
        return value is None
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is np.ndarray:
        if isinstance(value, (dict, str, bytes)) or value is None:
            return False
        try:
            return np.asarray(value).dtype.kind in "biuf"
        except (ValueError, TypeError):
            return False
    if hint is bool:
        return isinstance(value, (bool, np.bool_))
    if hint is int:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return not args or all(matches_annotation(v, args[0]) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


# --------------------------------------------------------------------------- JSON shapes
_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
          dict: "an object", list: "a list", object: "any value"}


def _matches(value: Any, t: type) -> bool:
    if t is object:
        return True
    if t is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, t)


def _describe(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


def check_json(value: Any, spec: Any, where: str, path: str = "") -> Any:
    """Raise :class:`SchemaError` naming ``where`` and the key path when ``value`` does not
    match ``spec`` (see the module docstring); returns ``value``."""
    here = path or "top level"
    if isinstance(spec, type) or (isinstance(spec, tuple) and all(isinstance(t, type) for t in spec)):
        types = spec if isinstance(spec, tuple) else (spec,)
        if not any(_matches(value, t) for t in types):
            want = " or ".join(_NAMES.get(t, t.__name__) for t in types)
            raise SchemaError(f"{where}: {here}: expected {want}, got {_describe(value)}")
        return value
    if isinstance(spec, list):
        if not isinstance(value, list):
            raise SchemaError(f"{where}: {here}: expected a list, got {_describe(value)}")
        for i, item in enumerate(value):
            check_json(item, spec[0], where, f"{path}[{i}]")
        return value
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise SchemaError(f"{where}: {here}: expected an object, got {_describe(value)}")
        if str in spec:
            for k, v in value.items():
                check_json(v, spec[str], where, f"{path}.{k}" if path else str(k))
            return value
        for key, sub in spec.items():
            optional = key.startswith("?")
            name = key[1:] if optional else key
            if name not in value:
                if optional:
                    continue
                raise SchemaError(f"{where}: {here}: missing key {name!r}")
            check_json(value[name], sub, where, f"{path}.{name}" if path else name)
        return value
    raise TypeError(f"check_json: bad spec {spec!r}")


__all__ = ["SPIKE_COUNT_MAX", "SPIKE_KINDS", "SchemaError", "SpikeError", "check_json",
           "check_spike_values", "check_spikes", "matches_annotation"]
