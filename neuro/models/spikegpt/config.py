"""SpikeGPT model configuration: a JSON-serialisable dataclass and the named presets.

Presets (``SpikeGPTConfig.preset(name)``):

* ``tiny``: 4 blocks x 128 channels, byte vocabulary (256), context 128; trains on a CPU in
  minutes (the offline Shakespeare corpus).
* ``46M``: the paper's enwik8 model, 12 x 512, context 1024, byte vocabulary: 41.0M parameters
  in the blocks + 0.26M embedding/head (the paper counts 46M with its character vocabulary; the
  layer sizes are the reference's enwik8 setting, see ``reference/models.md`` 2.3).
* ``216M``: the OpenWebText2 model, 18 x 768, GPT-NeoX-20B tokenizer (50277 symbols), context
  1024: 138M in the blocks + 77M embedding and head (215.4M).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from neuro.models.base import ModelConfig


@dataclass
class SpikeGPTConfig(ModelConfig):
    """Sizes and switches of :class:`~neuro.models.spikegpt.model.SpikeGPT`.

    Args:
        vocab_size: V, the number of token ids.
        n_layer: L, blocks.
        n_embd: C, channels of the residual stream.
        ctx_len: the context length used for training (tokens per sample); inference is not
            limited by it (the state carries any length).
        ffn_mult: hidden width of the channel mixing is ``ffn_mult * C`` (4 in the paper).
        binary_embedding: apply the Heaviside (ATan surrogate, alpha 2) to the embedding rows.
        spiking: LIF units on both sub-layer outputs; ``False`` replaces them by the identity
            (the non-spiking RWKV baseline of the same size).
        tau: LIF time constant in tokens (2 in the paper); the decay per token is ``1 - 1/tau``.
        threshold: LIF firing threshold (1 in the paper).
        dropout: dropout on the residual stream after each block (training only).
        l2wrap: add the reference's L2Wrap gradient to the loss (:func:`l2wrap`).
        vocab: the tokenizer's description (``neuro.datasets.text`` ``Tokenizer.to_dict``), kept
            with the model so a checkpoint decodes its own tokens; ``None`` when unknown.
    """

    vocab_size: int = 256
    n_layer: int = 4
    n_embd: int = 128
    ctx_len: int = 128
    ffn_mult: int = 4
    binary_embedding: bool = True
    spiking: bool = True
    tau: float = 2.0
    threshold: float = 1.0
    dropout: float = 0.0
    l2wrap: bool = True
    vocab: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_layer", "n_embd", "ctx_len", "ffn_mult"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"SpikeGPTConfig.{name} must be a positive int, got {value!r}")
        if not self.tau >= 1.0:
            raise ValueError(f"SpikeGPTConfig.tau must be >= 1 token, got {self.tau!r}")
        if not self.threshold > 0:
            raise ValueError(f"SpikeGPTConfig.threshold must be > 0, got {self.threshold!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"SpikeGPTConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if self.vocab is not None and not isinstance(self.vocab, dict):
            raise ValueError("SpikeGPTConfig.vocab must be a tokenizer dict or None")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SpikeGPTConfig:
        """The named preset (``tiny``, ``46M``, ``216M``) with ``overrides`` applied (checked as
        :meth:`from_dict` checks a config: unknown keys, types, declared memory)."""
        if name not in PRESETS:
            raise ValueError(f"unknown SpikeGPT preset {name!r}; known: {sorted(PRESETS)}")
        return cls.from_dict({**PRESETS[name].to_dict(), **overrides})

    def n_params(self) -> int:
        """Parameter count of the model this config builds."""
        C, V, L, H = self.n_embd, self.vocab_size, self.n_layer, self.ffn_mult * self.n_embd
        per_block = 4 * C + 5 * C + 4 * C * C + 2 * C + 2 * C * H + C * C  # LNs, att, ffn
        return V * C + 2 * C + L * per_block + 2 * C + V * C

    def n_elements(self) -> int:
        """:meth:`n_params` and the two LIF units' scalars per block (buffers)."""
        return self.n_params() + (4 * self.n_layer if self.spiking else 0)

    def n_working(self) -> int:
        """One token's logits and the per-block state (token shifts, WKV numerator/denominator,
        LIF membranes) of one sequence."""
        return self.vocab_size + 8 * self.n_layer * self.n_embd


PRESETS: dict[str, SpikeGPTConfig] = {
    "tiny": SpikeGPTConfig(vocab_size=256, n_layer=4, n_embd=128, ctx_len=128),
    "46M": SpikeGPTConfig(vocab_size=256, n_layer=12, n_embd=512, ctx_len=1024),
    "216M": SpikeGPTConfig(vocab_size=50277, n_layer=18, n_embd=768, ctx_len=1024),
}

__all__ = ["PRESETS", "SpikeGPTConfig"]
