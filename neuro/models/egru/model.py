"""EGRU models: the word-level language model and the DVS gesture network.

Shapes are time-first. :class:`EGRULanguageModel`: tokens ``[T, B]`` (int64) -> logits
``[T, B, vocab]``; :class:`EGRUGestureNet`: frames ``[T, B, C, S, S]`` -> logits
``[T, B, classes]``. Both return ``(out, state)`` (state: one :class:`EGRUState` per layer, to
carry across truncated-BPTT segments) and keep the last call's per-layer internals in
``last_aux`` (:class:`Aux`): ``c`` and ``o`` for the regulariser, the output trace of the last
layer, per-layer forward/backward sparsity, and the regulariser's value ``reg``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...neurons.egru import EGRUState
from ..base import FamilyModel
from .config import EGRUGestureConfig, EGRULMConfig
from .layer import EGRULayer, activity_regularization, output_trace


@dataclass
class Aux:
    """Internals of the last forward: per layer ``c``, ``o`` (``[T, B, H]``), the last layer's
    output ``trace`` (``0.9 tr + 0.1 y``), per-layer ``stats`` (:class:`~.kernels.SparsityStats`,
    as dicts: ``sparsity``) and the regulariser ``reg`` (a scalar tensor, 0 when
    ``alpha = beta = gamma = 0``)."""

    c: list[Tensor] = field(default_factory=list)
    o: list[Tensor] = field(default_factory=list)
    trace: Tensor | None = None
    stats: list[Any] = field(default_factory=list)
    reg: Tensor | float = 0.0

    @property
    def sparsity(self) -> list[dict[str, Any]]:
        """Per layer ``{"forward", "backward", "backward_dy_skipped"}`` (computed when read)."""
        return [s.as_dict() for s in self.stats]

    def activity(self) -> float:
        """Fraction of units with an event, over every layer, step and sequence."""
        n = sum(o.numel() for o in self.o)
        return float(sum(float(o.sum()) for o in self.o) / max(n, 1))


def variational_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Dropout with one mask per sequence, shared over time: ``x [T, B, F]``, mask ``[1, B, F]``
    (survivors scaled by ``1 / (1 - p)``)."""
    if not training or p == 0.0:
        return x
    mask = torch.bernoulli(x.new_full((1,) + tuple(x.shape[1:]), 1.0 - p)) / (1.0 - p)
    return x * mask


def embedding_dropout(weight: Tensor, p: float, training: bool) -> Tensor:
    """Word dropout on the embedding matrix ``[V, E]``: whole rows (words) zeroed with
    probability ``p``, the rest scaled by ``1 / (1 - p)`` (Gal & Ghahramani 2016)."""
    if not training or p == 0.0:
        return weight
    mask = torch.bernoulli(weight.new_full((weight.shape[0], 1), 1.0 - p)) / (1.0 - p)
    return weight * mask


def _run_layers(layers: nn.ModuleList, x: Tensor, state: list[EGRUState] | None,
                between: float, training: bool, cfg: Any) -> tuple[Tensor, list[EGRUState], Aux]:
    if state is not None and len(state) != len(layers):
        raise ValueError(f"EGRU model: state must hold {len(layers)} layer states, got {len(state)}")
    aux = Aux()
    new_state = []
    reg: Tensor | float = 0.0
    for i, layer in enumerate(cast("list[EGRULayer]", layers)):
        y, st = layer(x, None if state is None else state[i], record=True)
        new_state.append(EGRUState(st.c[-1], st.y[-1], st.o[-1]))
        aux.c.append(st.c)
        aux.o.append(st.o)
        aux.stats.append(layer.last_stats)
        if cfg.alpha or cfg.beta or cfg.gamma:
            reg = reg + activity_regularization(st.c, st.o, cfg.alpha, cfg.beta, cfg.gamma)
        x = variational_dropout(y, between, training) if i < len(layers) - 1 else y
    aux.reg = reg
    return x, new_state, aux


class EGRULanguageModel(nn.Module, FamilyModel):
    """Word-level EGRU language model (module docstring; :class:`EGRULMConfig`)::

        e = EmbDrop(E)[tokens]  -> variational dropout (dropout_emb)
        h1..hL = EGRU layers, variational dropout (dropout_forward) between them
        logits = VarDrop(h_L, dropout_output) E^T + b      (decoder tied to the embedding E)
    """

    name = "egru-lm"
    config_class = EGRULMConfig
    config: EGRULMConfig

    def __init__(self, config: EGRULMConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else EGRULMConfig()
        cfg = self.config
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.emb_dim)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        sizes = [cfg.emb_dim] + cfg.hidden_sizes
        self.layers = nn.ModuleList(
            EGRULayer(sizes[i], sizes[i + 1], thr_mean=cfg.thr_mean, dampening=cfg.dampening,
                      support=cfg.support, zoneout=cfg.zoneout, dropconnect=cfg.dropconnect,
                      backend=cfg.backend)
            for i in range(len(cfg.hidden_sizes)))
        self.decoder_bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        self.last_aux = Aux()

    @staticmethod
    def optional_tensor(key: str) -> bool:
        """Tensors a checkpoint may hold beyond a fresh model's: the pruning masks
        (``layers.<i>.kernel_mask``/``recurrent_mask``, loaded by the layer)."""
        return key.startswith("layers.") and key.endswith((".kernel_mask", ".recurrent_mask"))

    def forward(self, tokens: Tensor, state: list[EGRUState] | None = None
                ) -> tuple[Tensor, list[EGRUState]]:
        """``tokens [T, B]`` (int64 word ids) -> ``(logits [T, B, vocab], state)``."""
        if tokens.dim() != 2 or tokens.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"EGRULanguageModel: tokens must be an integer [T, B] tensor, got "
                             f"{tuple(tokens.shape)} {tokens.dtype}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.config.vocab_size):
            raise ValueError(f"EGRULanguageModel: token ids must lie in [0, "
                             f"{self.config.vocab_size}), got {int(tokens.min())}..{int(tokens.max())}")
        cfg = self.config
        w = embedding_dropout(self.embedding.weight, cfg.dropout_words, self.training)
        x = variational_dropout(F.embedding(tokens, w), cfg.dropout_emb, self.training)
        h, new_state, aux = _run_layers(self.layers, x, state, cfg.dropout_forward,
                                        self.training, cfg)
        aux.trace = output_trace(h)
        self.last_aux = aux
        h = variational_dropout(h, cfg.dropout_output, self.training)
        return F.linear(h, self.embedding.weight, self.decoder_bias), new_state

    def to_graph(self) -> Any:
        """This network in the graph IR (:func:`neuro.models.egru.graph.to_graph`)."""
        from .graph import to_graph

        return to_graph(self)

    def predict(self, x: Tensor) -> Tensor:
        """The most likely next word at every position, ``[T, B]``."""
        logits, _ = self(x)
        return logits.argmax(-1)


class EGRUGestureNet(nn.Module, FamilyModel):
    """DVS gesture network (:class:`EGRUGestureConfig`): per-frame CNN to 512 features, dropout,
    one EGRU layer, linear readout per step. ``predict``: argmax of the logits summed over time."""

    name = "egru-gesture"
    config_class = EGRUGestureConfig
    config: EGRUGestureConfig

    def __init__(self, config: EGRUGestureConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else EGRUGestureConfig()
        cfg = self.config
        convs: list[nn.Module] = []
        c_in = cfg.in_channels
        for c_out in cfg.channels:
            convs += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                      nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c_in = c_out
        convs += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, cfg.features),
                  nn.ReLU(inplace=True)]
        self.frontend = nn.Sequential(*convs)
        self.rnn = EGRULayer(cfg.features, cfg.hidden_size, thr_mean=cfg.thr_mean,
                             dampening=cfg.dampening, support=cfg.support, zoneout=cfg.zoneout,
                             dropconnect=cfg.dropconnect, backend=cfg.backend)
        self.readout = nn.Linear(cfg.hidden_size, cfg.classes)
        self.last_aux = Aux()

    def forward(self, frames: Tensor, state: list[EGRUState] | None = None
                ) -> tuple[Tensor, list[EGRUState]]:
        """``frames [T, B, C, S, S]`` (event counts per 25 ms bin) -> ``(logits [T, B, classes],
        state)``."""
        cfg = self.config
        want = (cfg.in_channels, cfg.frame_size, cfg.frame_size)
        if frames.dim() != 5 or tuple(frames.shape[2:]) != want:
            raise ValueError(f"EGRUGestureNet: frames must be [T, B, {want[0]}, {want[1]}, "
                             f"{want[2]}], got {tuple(frames.shape)}")
        T, B = frames.shape[:2]
        feats = self.frontend(frames.reshape(T * B, *want)).reshape(T, B, cfg.features)
        feats = F.dropout(feats, cfg.dropout, self.training)
        layers = nn.ModuleList([self.rnn])
        h, new_state, aux = _run_layers(layers, feats, state, 0.0, self.training, cfg)
        aux.trace = output_trace(h)
        self.last_aux = aux
        h = F.dropout(h, cfg.dropout, self.training)
        return self.readout(h), new_state


__all__ = ["Aux", "EGRUGestureNet", "EGRULanguageModel", "embedding_dropout",
           "variational_dropout"]
