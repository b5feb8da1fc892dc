r"""SpikeGPT (Zhu, Zhao, Li, Eshraghian, TMLR 2024): the spiking RWKV language model.

Shapes are time-first: tokens ``idx [T, B]`` (int64), activations ``[T, B, C]``, logits
``[T, B, V]``; the token axis is the time axis of the LIF neurons and of WKV. ``H(z) = 1`` if
``z >= 0`` (so ``H(0) = 1``); ``shift(a)_t = a_{t-1}`` with the previous chunk's last value (zero
for a fresh sequence) at ``t = 0``::

    x = H(E[idx])                                    binary embedding (ATan surrogate, alpha 2)
    x = LN0(x)                                       block 0 only
    block i:
      a = LN1(x);  x_m = a * mu_m + shift(a) * (1 - mu_m)              m in k, v, r
      k = W_k x_k;  v = W_v x_v;  r = sigmoid(W_r x_r)
      x = x + LIF( W_o (r * WKV(time_decay, time_first, k, v)) )       (neuro.models.spikegpt.wkv)
      f = LN2(x);  f_m = f * nu_m + shift(f) * (1 - nu_m)              m in k, r
      x = x + LIF( sigmoid(F_r f_r) * F_v relu(F_k f_k)^2 )            hidden width 4C
    logits = head(LN_out(x))

The LIF units are :class:`neuro.neurons.LIF` (``decay_input=True``, ``beta = 1 - 1/tau`` with
``tau = 2`` tokens, hard reset to 0, threshold 1, ATan surrogate alpha 2, reset not detached)::

    h_t = v_{t-1} + (x_t - v_{t-1}) / tau;   s_t = H(h_t - 1);   v_t = h_t (1 - s_t)

so every update of the real-valued residual stream is a binary spike tensor.

**One set of weights, two modes.** :meth:`SpikeGPT.forward` runs a chunk of tokens from a
:class:`SpikeGPTState` (``None``: a fresh sequence) and returns the state after it: the token-shift
values (last LN1 and LN2 outputs), the WKV sums (``a, b, p``, float64) and the two LIF membranes
of every block. Training runs whole sequences (parallel mode); :meth:`SpikeGPT.step` feeds one
token ``[B]`` (streaming mode) through the same computation; a sequence fed token by token gives
the same logits and spikes as one pass over it (tests: ``test_model.py``).

**Where the reference's two modes disagree** (its ``model.py`` GPT mode vs ``model_run.py`` RNN
mode), this model follows the training (GPT) mode, because that is the function the published
weights were trained as: (1) the RNN mode divides ``att.output``/``ffn.value`` of block ``i`` by
``2^(i // 6)`` and halves ``x`` after every sixth block, an fp16 trick that is exact for plain RWKV
but not here, since the halved currents feed LIF units with a fixed threshold while the spikes added
to the halved stream keep full size; (2) the RNN mode applies the embedding Heaviside only when the
vocabulary has 77 symbols. Neither is done here; ``binary_embedding`` switches (2) for every
vocabulary. Every call starts from the state it is given (the reference's LIF membranes persist in
the modules across calls unless reset).

Parameter names are the reference's (``emb``, ``blocks.i.{ln0,ln1,ln2,att,ffn}``, ``ln_out``,
``head``), so its state dicts load (:mod:`neuro.models.spikegpt.reference`).
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuro.kernels import blas
from neuro.models.base import FamilyModel
from neuro.neurons import LIF
from neuro.neurons.lif import LIFState
from neuro.surrogate import ATan

from . import step as step_kernel
from .config import SpikeGPTConfig
from .wkv import WKVState, wkv
from .wkv import init_state as wkv_init_state


def spikegpt_lif(tau: float = 2.0, threshold: float = 1.0) -> LIF:
    """SpikeGPT's LIF unit: neuro's :class:`~neuro.neurons.LIF` with ``decay_input=True``,
    ``beta = 1 - 1/tau`` (tau in tokens), hard reset to 0, reset not detached, ATan (alpha 2)."""
    return LIF(beta=1.0 - 1.0 / tau, threshold=threshold, decay_input=True, reset="zero",
               detach_reset=False, surrogate=ATan(2.0))


class BlockState(NamedTuple):
    """One block's state between chunks; every field ``[B, C]``."""

    att_shift: Tensor  #: last LN1 output (time-mixing token shift)
    wkv: WKVState  #: WKV sums ``S = a e^p``, ``Z = b e^p`` (float64)
    att_v: Tensor  #: membrane of the attention LIF (after reset)
    ffn_shift: Tensor  #: last LN2 output (channel-mixing token shift)
    ffn_v: Tensor  #: membrane of the FFN LIF (after reset)


class SpikeGPTState(NamedTuple):
    """The model's state between chunks: one :class:`BlockState` per block."""

    blocks: tuple[BlockState, ...]

    def detach(self) -> SpikeGPTState:
        """The same values cut from the autograd graph (between chunks of truncated
        back-propagation through time; the WKV sums never carry a gradient)."""
        return SpikeGPTState(tuple(
            BlockState(b.att_shift.detach(), b.wkv, b.att_v.detach(), b.ffn_shift.detach(),
                       b.ffn_v.detach()) for b in self.blocks))


def _shift(a: Tensor, prev: Tensor) -> Tensor:
    """``shift(a)_t = a_{t-1}``, ``prev`` at ``t = 0``; ``a [T, B, C]``, ``prev [B, C]``."""
    return torch.cat([prev[None], a[:-1]], dim=0)


class TimeMix(nn.Module):
    """Spiking RWKV time mixing without its LIF: ``W_o (sigmoid(W_r x_r) * WKV(k, v))``."""

    def __init__(self, n_embd: int) -> None:
        super().__init__()
        C = n_embd
        self.time_decay = nn.Parameter(torch.zeros(C))
        self.time_first = nn.Parameter(torch.zeros(C))
        self.time_mix_k = nn.Parameter(torch.full((1, 1, C), 0.5))
        self.time_mix_v = nn.Parameter(torch.full((1, 1, C), 0.5))
        self.time_mix_r = nn.Parameter(torch.full((1, 1, C), 0.5))
        self.key = blas.Linear(C, C, bias=False)
        self.value = blas.Linear(C, C, bias=False)
        self.receptance = blas.Linear(C, C, bias=False)
        self.output = blas.Linear(C, C, bias=False)

    def forward(self, a: Tensor, prev: Tensor, state: WKVState,
                probe: dict[str, Tensor] | None = None) -> tuple[Tensor, WKVState]:
        """``a = LN1(x) [T, B, C]``; ``prev`` the LN1 output before ``a[0]``."""
        s = _shift(a, prev)
        xk = a * self.time_mix_k + s * (1 - self.time_mix_k)
        xv = a * self.time_mix_v + s * (1 - self.time_mix_v)
        xr = a * self.time_mix_r + s * (1 - self.time_mix_r)
        k, v = self.key(xk), self.value(xv)
        r = torch.sigmoid(self.receptance(xr))
        y, state = wkv(self.time_decay, self.time_first, k, v, state)
        out = self.output(r * y)
        if probe is not None:
            probe.update(att_k=k, att_v=v, att_wkv=y, att_in=out)
        return out, state


class ChannelMix(nn.Module):
    """Spiking RFFN without its LIF: ``sigmoid(F_r f_r) * F_v relu(F_k f_k)^2``."""

    def __init__(self, n_embd: int, hidden: int) -> None:
        super().__init__()
        C = n_embd
        self.time_mix_k = nn.Parameter(torch.full((1, 1, C), 0.5))
        self.time_mix_r = nn.Parameter(torch.full((1, 1, C), 0.5))
        self.key = blas.Linear(C, hidden, bias=False)
        self.receptance = blas.Linear(C, C, bias=False)
        self.value = blas.Linear(hidden, C, bias=False)

    def forward(self, f: Tensor, prev: Tensor) -> Tensor:
        """``f = LN2(x) [T, B, C]``; ``prev`` the LN2 output before ``f[0]``."""
        s = _shift(f, prev)
        fk = f * self.time_mix_k + s * (1 - self.time_mix_k)
        fr = f * self.time_mix_r + s * (1 - self.time_mix_r)
        return torch.sigmoid(self.receptance(fr)) * self.value(torch.relu(self.key(fk)).square())


class Block(nn.Module):
    """One SpikeGPT block (module docstring); block 0 also holds ``ln0``."""

    def __init__(self, config: SpikeGPTConfig, layer_id: int) -> None:
        super().__init__()
        C = config.n_embd
        self.layer_id = layer_id
        self.ln1 = nn.LayerNorm(C)
        self.ln2 = nn.LayerNorm(C)
        if layer_id == 0:
            self.ln0 = nn.LayerNorm(C)
        self.att = TimeMix(C)
        self.ffn = ChannelMix(C, config.ffn_mult * C)
        self.lif1: LIF | None = None
        self.lif2: LIF | None = None
        if config.spiking:
            self.lif1 = spikegpt_lif(config.tau, config.threshold)
            self.lif2 = spikegpt_lif(config.tau, config.threshold)
        self.drop = nn.Dropout(config.dropout)

    @staticmethod
    def _fire(lif: LIF | None, x: Tensor, v: Tensor, probe: dict[str, Tensor] | None,
              name: str) -> tuple[Tensor, Tensor]:
        if lif is None:  # the non-spiking baseline: the identity, no membrane
            if probe is not None:
                probe[f"{name}_spikes"] = x
            return x, v
        record = probe is not None
        s, st = lif(x, LIFState(v), record=record)
        if record:
            assert probe is not None  # record is `probe is not None`
            probe[f"{name}_spikes"] = s
            probe[f"{name}_vmem"] = st.v
            return s, st.v[-1]
        return s, st.v

    def forward(self, x: Tensor, state: BlockState,
                probe: dict[str, Tensor] | None = None) -> tuple[Tensor, BlockState]:
        a = self.ln1(x)
        cur, wkv_state = self.att(a, state.att_shift, state.wkv, probe)
        s, att_v = self._fire(self.lif1, cur, state.att_v, probe, "att")
        x = x + s
        f = self.ln2(x)
        cur = self.ffn(f, state.ffn_shift)
        if probe is not None:
            probe["ffn_in"] = cur
        s, ffn_v = self._fire(self.lif2, cur, state.ffn_v, probe, "ffn")
        x = self.drop(x + s)
        return x, BlockState(a[-1], wkv_state, att_v, f[-1], ffn_v)


class _L2Wrap(torch.autograd.Function):
    """The reference's ``L2Wrap``: the loss unchanged; backward adds ``1e-4 / N * max_v z`` at
    the argmax of each of the ``N`` rows of logits ``z``, not scaled by the incoming gradient."""

    @staticmethod
    def forward(ctx: Any, loss: Tensor, logits: Tensor) -> Tensor:
        ctx.save_for_backward(logits)
        return loss

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor]:
        (z,) = ctx.saved_tensors
        rows = z.reshape(-1, z.shape[-1])
        factor = 1e-4 / rows.shape[0]
        mx, ids = rows.max(-1, keepdim=True)
        gz = torch.zeros_like(rows).scatter_(-1, ids, mx * factor)
        return grad, gz.reshape(z.shape)


def l2wrap(loss: Tensor, logits: Tensor) -> Tensor:
    """``loss`` with the L2Wrap gradient on ``logits`` (see :class:`_L2Wrap`): it pulls the
    largest logit of every position toward 0, keeping the logits from drifting upward."""
    return _L2Wrap.apply(loss, logits)


class SpikeGPT(nn.Module, FamilyModel):
    """The SpikeGPT language model (module docstring).

    Example::

        >>> model = SpikeGPT(SpikeGPTConfig.preset("tiny"))
        >>> idx = torch.randint(0, 256, (64, 2))           # [T, B] token ids
        >>> logits, state = model(idx)                     # [T, B, V], SpikeGPTState
        >>> more, state = model(idx[:8], state)            # continues the same 2 sequences
    """

    name = "spikegpt"
    config_class = SpikeGPTConfig
    config: SpikeGPTConfig

    def __init__(self, config: SpikeGPTConfig) -> None:
        super().__init__()
        if not isinstance(config, SpikeGPTConfig):
            raise ValueError(f"SpikeGPT needs a SpikeGPTConfig, got {type(config).__name__}")
        self.config = config
        C, V = config.n_embd, config.vocab_size
        self.emb = nn.Embedding(V, C)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.ln_out = nn.LayerNorm(C)
        self.head = blas.Linear(C, V, bias=False)
        self.spike_fn = ATan(2.0)
        rwkv_init(self)

    # -- state ------------------------------------------------------------------------------
    def init_state(self, batch: int, *, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> SpikeGPTState:
        """A fresh state (empty past, zero membranes) for ``batch`` sequences."""
        dtype = dtype or self.head.weight.dtype
        device = device or self.head.weight.device
        C = self.config.n_embd

        def z() -> Tensor:
            return torch.zeros(batch, C, device=device, dtype=dtype)

        return SpikeGPTState(tuple(BlockState(z(), wkv_init_state(batch, C, device), z(), z(), z())
                                   for _ in self.blocks))

    def _check(self, idx: Tensor, state: SpikeGPTState | None) -> None:
        if not isinstance(idx, Tensor) or idx.dtype not in (torch.int64, torch.int32):
            raise ValueError("SpikeGPT: tokens must be an int64 tensor [T, B]")
        if idx.dim() != 2 or idx.shape[0] == 0:
            raise ValueError(f"SpikeGPT: tokens must be [T, B] with T >= 1, got {tuple(idx.shape)}")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.config.vocab_size):
            raise ValueError(f"SpikeGPT: token ids must lie in [0, {self.config.vocab_size}), "
                             f"got [{int(idx.min())}, {int(idx.max())}]")
        if state is not None:
            if not isinstance(state, SpikeGPTState) or len(state.blocks) != len(self.blocks):
                raise ValueError("SpikeGPT: state must be a SpikeGPTState of this model")
            if state.blocks[0].att_shift.shape != (idx.shape[1], self.config.n_embd):
                raise ValueError(f"SpikeGPT: the state is for batch "
                                 f"{state.blocks[0].att_shift.shape[0]}, tokens have batch "
                                 f"{idx.shape[1]}")

    # -- the two modes ----------------------------------------------------------------------
    def forward(self, idx: Tensor, state: SpikeGPTState | None = None, *,
                probe: dict[str, Tensor] | None = None) -> tuple[Tensor, SpikeGPTState]:
        """Tokens ``idx [T, B]`` -> ``(logits [T, B, V], state after the last token)``.

        ``probe``: a dict that receives the intermediate tensors (``emb_spikes``, ``ln0_out``,
        ``L{i}.att_k``, ``...att_v``, ``...att_wkv``, ``...att_in``, ``...att_spikes``,
        ``...att_vmem``, ``...ffn_in``, ``...ffn_spikes``, ``...ffn_vmem``, ``...block_out``),
        each ``[T, B, ...]``.
        """
        self._check(idx, state)
        if state is None:
            state = self.init_state(idx.shape[1], device=idx.device)
        e = self.emb(idx)
        x = self.spike_fn(e) if self.config.binary_embedding else e
        if probe is not None:
            probe["emb_spikes"] = x
        new: list[BlockState] = []
        for i, (block, st) in enumerate(zip(cast("list[Block]", self.blocks), state.blocks)):
            if i == 0:
                x = block.ln0(x)
                if probe is not None:
                    probe["ln0_out"] = x
            sub: dict[str, Tensor] | None = {} if probe is not None else None
            x, st = block(x, st, sub)
            if probe is not None and sub is not None:
                probe.update({f"L{i}.{k}": v for k, v in sub.items()})
                probe[f"L{i}.block_out"] = x
            new.append(st)
        return self.head(self.ln_out(x)), SpikeGPTState(tuple(new))

    def step(self, token: Tensor, state: SpikeGPTState | None = None, *, fused: bool = True,
             weights: str = "float32") -> tuple[Tensor, SpikeGPTState]:
        """Streaming mode: one token per sequence ``[B]`` -> ``(logits [B, V], state)``.

        Without autograd on a float32 CPU model this is one call of the fused C++ step
        (:mod:`neuro.models.spikegpt.step`, the same results within float32 rounding);
        ``fused=False``, or any other case, runs :meth:`forward` on a chunk of one token.
        ``weights="bfloat16"`` or ``"int8"`` reads the matrices converted to that format (fewer
        bytes per token; results differ by the weight rounding); only the fused step has them.
        """
        if not isinstance(token, Tensor) or token.dim() != 1:
            raise ValueError("SpikeGPT.step: token must be a 1-D int64 tensor [B]")
        if weights not in step_kernel.WEIGHT_FORMATS:
            raise ValueError(f"SpikeGPT.step: weights must be one of {step_kernel.WEIGHT_FORMATS},"
                             f" got {weights!r}")
        if fused and step_kernel.usable(self, token):
            self._check(token[None], state)
            if state is None:
                state = self.init_state(token.shape[0], device=token.device)
            return step_kernel.fused_step(self, token, state, weights)
        if weights != "float32":
            why = step_kernel.build_error() or ("fused=False" if not fused else
                                                "the fused step needs a float32 CPU model without "
                                                "autograd (torch.no_grad)")
            raise ValueError(f"SpikeGPT.step: {weights} weights run only in the fused C++ step, "
                             f"which cannot run here ({why})")
        logits, state = self(token[None], state)
        return logits[0], state

    def loss(self, idx: Tensor, targets: Tensor, state: SpikeGPTState | None = None
             ) -> tuple[Tensor, Tensor, SpikeGPTState]:
        """Cross-entropy (nats per token, mean over ``T x B``) of next tokens ``targets [T, B]``,
        with the L2Wrap gradient when ``config.l2wrap``; returns ``(loss, logits, state)``."""
        if targets.shape != idx.shape:
            raise ValueError(f"SpikeGPT.loss: targets {tuple(targets.shape)} must match tokens "
                             f"{tuple(idx.shape)}")
        logits, state = self(idx, state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        if self.config.l2wrap:
            loss = l2wrap(loss, logits)
        return loss, logits, state

    def to_graph(self) -> Any:
        """This network in the graph IR (:func:`neuro.models.spikegpt.graph.to_graph`); what
        ``neuro.graph.from_module``, ``neuro export`` and ``neuro energy`` use."""
        from .graph import to_graph

        return to_graph(self)

    def predict(self, x: Tensor) -> Tensor:
        """The most likely next token after every position: ``[T, B]`` -> ``[T, B]``."""
        logits, _ = self(x)
        return logits.argmax(-1)

    # -- generation -------------------------------------------------------------------------
    @torch.no_grad()
    def stream(self, prompt: Sequence[int] | Tensor, n_tokens: int, *, temperature: float = 1.0,
               top_p: float = 1.0, seed: int = 0, weights: str = "float32") -> Iterator[int]:
        """Yield ``n_tokens`` sampled token ids one at a time after ``prompt`` (ids).

        The prompt runs in one parallel pass, then every new token is one :meth:`step`.
        Sampling: softmax of ``logits / temperature`` restricted to the smallest set of tokens
        whose probability reaches ``top_p`` (nucleus); ``temperature = 0`` takes the argmax. The
        draws come from a ``torch.Generator`` seeded with ``seed``: the same call gives the same
        tokens. ``weights``: the format the new tokens' steps read the matrices in (:meth:`step`;
        the prompt's parallel pass uses the float32 weights).
        """
        if weights not in step_kernel.WEIGHT_FORMATS:
            raise ValueError(f"generate: weights must be one of {step_kernel.WEIGHT_FORMATS}, "
                             f"got {weights!r}")
        if temperature < 0:
            raise ValueError(f"generate: temperature must be >= 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"generate: top_p must be in (0, 1], got {top_p}")
        if n_tokens < 0:
            raise ValueError(f"generate: n_tokens must be >= 0, got {n_tokens}")
        ids = torch.as_tensor(prompt, dtype=torch.int64, device=self.head.weight.device)
        if ids.dim() != 1 or ids.numel() == 0:
            raise ValueError("generate: the prompt must be a non-empty 1-D sequence of token ids")
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        was_training = self.training
        self.eval()
        try:
            logits, state = self(ids[:, None])
            last = logits[-1, 0]
            for _ in range(n_tokens):
                tok = sample(last, temperature, top_p, gen)
                yield tok
                last, state = self.step(torch.tensor([tok], device=ids.device), state,
                                        weights=weights)
                last = last[0]
        finally:
            self.train(was_training)

    def generate(self, prompt: Sequence[int] | Tensor, n_tokens: int, temperature: float = 1.0,
                 top_p: float = 1.0, seed: int = 0, weights: str = "float32") -> list[int]:
        """The ``n_tokens`` ids :meth:`stream` yields, as a list (deterministic for a seed)."""
        return list(self.stream(prompt, n_tokens, temperature=temperature, top_p=top_p,
                                seed=seed, weights=weights))


def sample(logits: Tensor, temperature: float, top_p: float, gen: torch.Generator) -> int:
    """One token id from ``logits [V]`` (temperature, nucleus ``top_p``, generator ``gen``)."""
    logits = logits.detach().to("cpu", torch.float64)
    if temperature == 0:
        return int(logits.argmax())
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1:
        sp, order = probs.sort(descending=True)
        keep = (sp.cumsum(0) - sp) < top_p  # tokens before the set already reaching top_p
        probs = torch.zeros_like(probs).scatter_(0, order[keep], sp[keep])
    return int(torch.multinomial(probs, 1, generator=gen))


@torch.no_grad()
def rwkv_init(model: SpikeGPT) -> None:
    """The reference's RWKV initialisation (its ``RWKV_Init`` plus the layers' own init).

    Per block ``l`` of ``L`` (``r0 = l / (L - 1)``, ``r1 = 1 - l / L``, channel ``h`` of ``C``):

    * ``time_decay[h] = -5 + 8 (h / (C - 1))^(0.7 + 1.3 r0)``;
      ``time_first[h] = ln 0.3 + 0.5 ((h + 1) mod 3 - 1)`` (zigzag);
    * time mixing ``mu_k = (h/C)^r1``, ``mu_v = (h/C)^r1 + 0.3 r0``, ``mu_r = (h/C)^(r1/2)``;
      channel mixing ``nu_k = nu_r = (h/C)^r1``;
    * zero: ``att.key``, ``att.receptance``, ``att.output``, ``ffn.receptance``, ``ffn.value``;
    * orthogonal: the other Linears with gain ``sqrt(out / in)`` when ``out > in`` (else 1), the
      head with gain 0.5 (``sqrt(V/C) * 0.5`` if ``V > C``), the embedding with gain
      ``1e-4 * sqrt(max(V, C))``; LayerNorms ``(1, 0)``.

    (The reference runs ``RWKV_Init`` only when ``RWKV_LOAD_MODEL == 'False'``; its golden data
    were made without it, with PyTorch's default Linear init. Loading weights replaces all of
    this anyway.)
    """
    cfg = model.config
    L, C = cfg.n_layer, cfg.n_embd
    h = torch.arange(C, dtype=torch.float64)
    for block in cast("list[Block]", model.blocks):
        r0 = block.layer_id / (L - 1) if L > 1 else 0.0
        r1 = 1.0 - block.layer_id / L
        att, ffn = block.att, block.ffn
        att.time_decay.copy_(-5 + 8 * (h / max(C - 1, 1)) ** (0.7 + 1.3 * r0))
        att.time_first.copy_(math.log(0.3) + 0.5 * ((h + 1) % 3 - 1))
        x = (h / C).reshape(1, 1, C)
        att.time_mix_k.copy_(x ** r1)
        att.time_mix_v.copy_(x ** r1 + 0.3 * r0)
        att.time_mix_r.copy_(x ** (0.5 * r1))
        ffn.time_mix_k.copy_(x ** r1)
        ffn.time_mix_r.copy_(x ** r1)
        for lin in (att.key, att.receptance, att.output, ffn.receptance, ffn.value):
            nn.init.zeros_(lin.weight)
        for lin in (att.value, ffn.key):
            o, i = lin.weight.shape
            nn.init.orthogonal_(lin.weight, gain=math.sqrt(o / i) if o > i else 1.0)
    V = cfg.vocab_size
    nn.init.orthogonal_(model.head.weight, gain=0.5 * (math.sqrt(V / C) if V > C else 1.0))
    nn.init.orthogonal_(model.emb.weight, gain=1e-4 * math.sqrt(max(V, C)))
    for m in model.modules():
        if isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


__all__ = ["Block", "BlockState", "ChannelMix", "SpikeGPT", "SpikeGPTState", "TimeMix",
           "l2wrap", "rwkv_init", "sample", "spikegpt_lif"]
