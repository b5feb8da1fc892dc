"""Dense recurrent baselines of the EGRU language model: ``torch.nn.GRU`` / ``torch.nn.LSTM``
stacks with the same embedding, tied decoder and variational dropouts.

:class:`RNNLanguageModel` has the interface of :class:`~.model.EGRULanguageModel` (tokens
``[T, B]`` -> ``(logits [T, B, vocab], state)``, one state per layer, ``last_aux``), so
:func:`~.training.fit` and :func:`~.training.evaluate` train and measure it unchanged::

    e = EmbDrop(E)[tokens] -> VarDrop(dropout_emb)
    h1..hL = nn.GRU / nn.LSTM layers (one module per layer: the widths may differ),
             VarDrop(dropout_forward) between them
    logits = VarDrop(h_L, dropout_output) E^T + b        (the last width equals emb_dim)

``last_aux.o`` holds ``(h != 0)`` per layer: a GRU's or LSTM's outputs are (almost) never exactly
zero, so its measured activity sparsity is (almost) 0. There is no regulariser and no
DropConnect (``nn.GRU`` has no hook for it).

Parameter counts: an ``nn.GRU`` layer ``I -> H`` has ``3H (I + H + 2)`` parameters, an EGRU layer
the same plus its ``H`` thresholds; an ``nn.LSTM`` layer ``4H (I + H + 2)``. :func:`matched`
picks the hidden widths (all but the last, which the tied decoder fixes) whose total count is
closest to a given EGRU's.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import EGRULMConfig
from .model import Aux, embedding_dropout, variational_dropout

KINDS = {"gru": (nn.GRU, 3), "lstm": (nn.LSTM, 4)}


def rnn_layer_params(kind: str, n_in: int, hidden: int) -> int:
    """Parameters of one ``nn.GRU`` (``3H (I + H + 2)``) or ``nn.LSTM`` (``4H (I + H + 2)``)
    layer ``I -> H``."""
    if kind not in KINDS:
        raise ValueError(f"RNN baseline kind must be one of {sorted(KINDS)}, got {kind!r}")
    return KINDS[kind][1] * hidden * (n_in + hidden + 2)


class RNNLanguageModel(nn.Module):
    """``torch.nn.GRU`` / ``torch.nn.LSTM`` language model with a tied decoder (module
    docstring). ``hidden_sizes[-1]`` must equal ``emb_dim``."""

    def __init__(self, kind: str, vocab_size: int, emb_dim: int, hidden_sizes: list[int], *,
                 dropout_words: float = 0.0, dropout_emb: float = 0.0,
                 dropout_forward: float = 0.0, dropout_output: float = 0.0) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"RNN baseline kind must be one of {sorted(KINDS)}, got {kind!r}")
        if not hidden_sizes or min(hidden_sizes) < 1 or hidden_sizes[-1] != emb_dim:
            raise ValueError(f"RNNLanguageModel: hidden_sizes must be positive and end with "
                             f"emb_dim ({emb_dim}) for the tied decoder, got {hidden_sizes}")
        for name, p in (("dropout_words", dropout_words), ("dropout_emb", dropout_emb),
                        ("dropout_forward", dropout_forward), ("dropout_output", dropout_output)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"RNNLanguageModel: {name} must lie in [0, 1), got {p}")
        self.kind = kind
        self.vocab_size, self.emb_dim = int(vocab_size), int(emb_dim)
        self.hidden_sizes = [int(h) for h in hidden_sizes]
        self.dropout_words, self.dropout_emb = dropout_words, dropout_emb
        self.dropout_forward, self.dropout_output = dropout_forward, dropout_output
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        cls = KINDS[kind][0]
        sizes = [emb_dim] + self.hidden_sizes
        self.layers = nn.ModuleList(cls(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.decoder_bias = nn.Parameter(torch.zeros(vocab_size))
        self.last_aux = Aux()

    def forward(self, tokens: Tensor, state: list[Any] | None = None
                ) -> tuple[Tensor, list[Any]]:
        """``tokens [T, B]`` -> ``(logits [T, B, vocab], state)``; ``state``: per layer ``h``
        ``[1, B, H]`` (GRU) or ``(h, c)`` (LSTM)."""
        if tokens.dim() != 2:
            raise ValueError(f"RNNLanguageModel: tokens must be [T, B], got {tuple(tokens.shape)}")
        if state is not None and len(state) != len(self.layers):
            raise ValueError(f"RNNLanguageModel: state must hold {len(self.layers)} layer "
                             f"states, got {len(state)}")
        w = embedding_dropout(self.embedding.weight, self.dropout_words, self.training)
        x = variational_dropout(F.embedding(tokens, w), self.dropout_emb, self.training)
        aux = Aux()
        new_state = []
        for i, layer in enumerate(self.layers):
            x, st = layer(x, None if state is None else state[i])
            new_state.append(st)
            aux.o.append((x.detach() != 0).to(x.dtype))
            if i < len(self.layers) - 1:
                x = variational_dropout(x, self.dropout_forward, self.training)
        self.last_aux = aux
        h = variational_dropout(x, self.dropout_output, self.training)
        return F.linear(h, self.embedding.weight, self.decoder_bias), new_state


def matched(kind: str, config: EGRULMConfig, *, dropouts: bool = True,
            step: int = 1) -> RNNLanguageModel:
    """The ``kind`` baseline whose parameter count is the closest to the EGRU LM of ``config``:
    the same vocabulary, embedding and tied decoder, as many layers, the last ``emb_dim`` wide and
    the others one common width ``h`` (a multiple of ``step``) chosen to minimise
    ``|n_params - config.n_elements()|``. ``dropouts``: copy the EGRU's embedding, word,
    forward and output dropouts."""
    if kind not in KINDS:
        raise ValueError(f"RNN baseline kind must be one of {sorted(KINDS)}, got {kind!r}")
    target = config.n_elements()
    n_layers = len(config.hidden_sizes)
    fixed = config.vocab_size * (config.emb_dim + 1)

    def count(h: int) -> int:
        sizes = [config.emb_dim] + [h] * (n_layers - 1) + [config.emb_dim]
        return fixed + sum(rnn_layer_params(kind, a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    if n_layers == 1:
        hidden = [config.emb_dim]
    else:
        widest = 4 * max(config.hidden_sizes) + step
        h = min(range(step, widest + 1, step), key=lambda w: abs(count(w) - target))
        hidden = [h] * (n_layers - 1) + [config.emb_dim]
    drop = ({"dropout_words": config.dropout_words, "dropout_emb": config.dropout_emb,
             "dropout_forward": config.dropout_forward, "dropout_output": config.dropout_output}
            if dropouts else {})
    return RNNLanguageModel(kind, config.vocab_size, config.emb_dim, hidden, **drop)


__all__ = ["KINDS", "RNNLanguageModel", "matched", "rnn_layer_params"]
