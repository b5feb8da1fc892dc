"""Config dataclasses of the EGRU family (JSON in and out through :class:`ModelConfig`).

Defaults are the paper's settings (``reference/models.md`` section 3.3; EvNN's
``benchmarks/lm`` and ``benchmarks/dvs_gesture``): the PTB language model and the DVS128 gesture
network. Smaller models for tests and the offline task only change sizes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..base import ModelConfig

BACKENDS = ("auto", "fused", "torch")


def _check_prob(owner: str, **probs: float) -> None:
    for name, p in probs.items():
        if not 0.0 <= p < 1.0:
            raise ValueError(f"{owner}: {name} must lie in [0, 1), got {p}")


def _egru_layer(n_in: int, hidden: int) -> int:
    """Elements of one :class:`~.layer.EGRULayer`: ``kernel [in, 3H]``, ``recurrent_kernel
    [H, 3H]``, two biases ``[3H]`` and the thresholds ``[H]``."""
    return 3 * hidden * (n_in + hidden + 2) + hidden


def _check_cell(owner: str, thr_mean: float, dampening: float, support: float,
                backend: str) -> None:
    if not 0.0 < thr_mean < 1.0:
        raise ValueError(f"{owner}: thr_mean must lie in (0, 1), got {thr_mean}")
    if dampening <= 0 or support <= 0:
        raise ValueError(f"{owner}: dampening and support must be > 0, got {dampening}, {support}")
    if backend not in BACKENDS:
        raise ValueError(f"{owner}: backend must be one of {BACKENDS}, got {backend!r}")


@dataclass
class EGRULMConfig(ModelConfig):
    """Word-level language model: embedding ``emb_dim``, EGRU layers ``hidden_sizes`` (the last
    equals ``emb_dim``: tied decoder), PTB run defaults.

    Dropouts: ``dropout_words`` removes whole words from the embedding matrix (Gal &
    Ghahramani's embedding dropout), ``dropout_emb`` / ``dropout_forward`` / ``dropout_output``
    are variational (one mask per sequence, shared over time) on the embedded input, between EGRU
    layers and before the decoder (EvNN's LM applies its ``VariationalDropout`` default 0.5
    there); ``dropconnect`` drops recurrent weights. ``alpha, beta, gamma``: the activity
    regulariser (:func:`~.layer.activity_regularization`), 0 in the paper's LM runs."""

    vocab_size: int = 10000
    emb_dim: int = 750
    hidden_sizes: list[int] = field(default_factory=lambda: [1350, 1350, 750])
    thr_mean: float = 0.01
    dampening: float = 3.6
    support: float = 3.6
    dropout_words: float = 0.1
    dropout_emb: float = 0.6
    dropout_forward: float = 0.25
    dropout_output: float = 0.5
    dropconnect: float = 0.7
    zoneout: float = 0.0
    alpha: float = 0.0
    beta: float = 0.0
    gamma: float = 0.0
    backend: str = "auto"

    def __post_init__(self) -> None:
        name = type(self).__name__
        self.hidden_sizes = [int(h) for h in self.hidden_sizes]
        if self.vocab_size < 2 or self.emb_dim < 1:
            raise ValueError(f"{name}: vocab_size >= 2 and emb_dim >= 1 needed, got "
                             f"{self.vocab_size}, {self.emb_dim}")
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"{name}: hidden_sizes must be positive, got {self.hidden_sizes}")
        if self.hidden_sizes[-1] != self.emb_dim:
            raise ValueError(f"{name}: the last hidden size ({self.hidden_sizes[-1]}) must equal "
                             f"emb_dim ({self.emb_dim}) for the tied decoder")
        _check_prob(name, dropout_words=self.dropout_words, dropout_emb=self.dropout_emb,
                    dropout_forward=self.dropout_forward, dropout_output=self.dropout_output,
                    dropconnect=self.dropconnect, zoneout=self.zoneout)
        _check_cell(name, self.thr_mean, self.dampening, self.support, self.backend)

    def n_elements(self) -> int:
        """The embedding ``[V, E]`` (tied decoder), the decoder bias and the EGRU layers."""
        sizes = [self.emb_dim] + self.hidden_sizes
        layers = sum(_egru_layer(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        return self.vocab_size * (self.emb_dim + 1) + layers

    def n_working(self) -> int:
        """One step's logits and layer states for one sequence."""
        return self.vocab_size + 4 * sum(self.hidden_sizes)


@dataclass
class EGRUGestureConfig(ModelConfig):
    """DVS128 gesture network: per-frame CNN (``channels``, stride-2 3x3 convolutions with batch
    norm and ReLU, then global average pooling and a linear map to ``features`` = 512), dropout,
    one EGRU layer of ``hidden_size`` = 795 units, a linear readout to ``classes`` per step.

    Frames are ``[T, B, in_channels, frame_size, frame_size]`` (25 ms bins, polarity merged: one
    channel). Paper run: dropout 0.63, DropConnect 0.08, zoneout 0.23, support 1.7, activity
    regularisation 0.01 (here the event-rate term ``gamma``)."""

    classes: int = 11
    in_channels: int = 1
    frame_size: int = 128
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512])
    features: int = 512
    hidden_size: int = 795
    thr_mean: float = 0.3
    dampening: float = 0.7
    support: float = 1.7
    dropout: float = 0.63
    dropconnect: float = 0.08
    zoneout: float = 0.23
    alpha: float = 0.0
    beta: float = 0.0
    gamma: float = 0.01
    backend: str = "auto"

    def __post_init__(self) -> None:
        name = type(self).__name__
        self.channels = [int(c) for c in self.channels]
        for key in ("classes", "in_channels", "frame_size", "features", "hidden_size"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"{name}: {key} must be >= 1, got {getattr(self, key)}")
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"{name}: channels must be positive, got {self.channels}")
        _check_prob(name, dropout=self.dropout, dropconnect=self.dropconnect,
                    zoneout=self.zoneout)
        _check_cell(name, self.thr_mean, self.dampening, self.support, self.backend)

    def n_elements(self) -> int:
        """3x3 convolutions with batch norm (4 per channel and a counter), the linear map to
        ``features``, the EGRU layer and the readout."""
        chans = [self.in_channels] + self.channels
        convs = sum(9 * a * b + 4 * b + 1 for a, b in zip(chans[:-1], chans[1:]))
        return (convs + chans[-1] * self.features + self.features
                + _egru_layer(self.features, self.hidden_size)
                + self.hidden_size * self.classes + self.classes)

    def n_working(self) -> int:
        """One frame and the first convolution's output for one sample."""
        side = self.frame_size
        return self.in_channels * side * side + self.channels[0] * ((side + 1) // 2) ** 2
