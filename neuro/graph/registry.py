"""The IR's vocabulary: node type name -> class, and reading a node back from its dict."""
from __future__ import annotations

from typing import Any

from .lm_nodes import LM_NODE_TYPES
from .nodes import (
    EGRU,
    IF,
    LI,
    LIF,
    Affine,
    AvgPool2d,
    ChannelAffine,
    Conv1d,
    Conv2d,
    CubaLIF,
    Delay,
    DelayedAffine,
    Flatten,
    Input,
    Linear,
    Node,
    NodeError,
    Output,
    SumPool2d,
    Threshold,
)

#: node type name -> class (a static table of the IR's vocabulary)
_CLASSES: tuple[type[Node], ...] = (Input, Output, Affine, Linear, DelayedAffine, Delay, Conv1d,
                                    Conv2d, Flatten, ChannelAffine, Threshold, LIF, CubaLIF, IF,
                                    LI, EGRU, SumPool2d, AvgPool2d, *LM_NODE_TYPES)
NODE_TYPES: dict[str, type[Node]] = {c.kind: c for c in _CLASSES}


def node_from_dict(d: dict[str, Any]) -> Node:
    """The node a ``to_dict()`` describes (``{"type": kind, field: value}``)."""
    kind = d.get("type")
    if kind not in NODE_TYPES:
        raise NodeError(f"unknown node type {kind!r}; known: {sorted(NODE_TYPES)}")
    return NODE_TYPES[kind].from_dict(d)
