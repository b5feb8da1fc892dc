"""SpikeGPT speed benchmark (issue 15, "Speed"): streaming generation (S1) and a training step
(S2) of the 12 x 512 model, neuro against its peers, on the same random weights.

Model: the ``46M`` preset (12 blocks, C = 512, FFN 2048, byte vocabulary V = 256; 41.2 M
parameters), float32. Weights: seed 0, every matrix N(0, 1/in) with ``att.key x 3``,
``att.output x 20``, ``ffn.value x 40`` and an N(0, 1) embedding (the scaling of the model tests,
so the LIF units fire; RWKV's own init zeroes five of the seven matrices, and the LIFs would never
fire), ``time_*`` from the RWKV init. Saved once under the reference's state-dict names and loaded
by every implementation.

S1, streaming generation, batch 1: time per token of one model step (token in, logits out) over
64 tokens after 8 warm-up tokens.

* ``neuro``: ``SpikeGPT.step`` under ``torch.inference_mode`` (the fused C++ step). It reads
  ``ffn.value`` only for the hidden units whose ``relu(.)^2`` is non-zero; the worker records that
  fraction (``ffn_active``) and the weight bytes a token then reads (``bytes_per_token``).
* ``neuro bf16`` / ``neuro int8``: the same step with ``weights="bfloat16"`` / ``"int8"`` (the
  matrices rounded once; activations float32), with the largest logits difference to the float32
  step over the first 8 tokens (``check_max_abs_diff``). Not the issue's fp32 comparison: the
  answer to its question of what bf16/int8 weights give, measured.
* ``neuro (generic)``: ``SpikeGPT.step(fused=False)``, the model's forward on a one-token chunk.
* ``reference RNN``: a re-implementation in plain torch of the reference's RNN mode
  (``src/model_run.py``, ``RWKV_RNN``, fp32, CPU): weights as ``(out, in)`` matrices applied with
  ``W @ x``, WKV in float32 with its max-subtracted state, one single-step LIF module per sub-block
  (SpikingJelly's default ``LIFNode``: tau 2, threshold 1, hard reset), the ``2^(i // 6)``
  rescaling and the embedding Heaviside only for V = 77, as the reference does. With both quirks
  turned off it gives neuro's logits (checked in the worker: ``check_max_abs_diff``).
* ``rwkv 0.8``: the ``rwkv`` PyPI package's RNN mode, strategy ``cpu fp32`` (its defaults:
  TorchScript on), the same weights. It runs plain RWKV-4: no LIF units and no embedding
  Heaviside (the same matrix products and WKV; the LIFs are a few element-wise operations). Its
  logits are checked against neuro's non-spiking model (``spiking=False, binary_embedding=False``)
  on the same weights.
* ``weight stream``: reading every weight once (``torch.sum`` over each matrix), the
  memory-bandwidth floor of a dense float32 batch-1 token on this machine at this moment.

S2, training step, B = 4, T = 256: forward + backward of the cross-entropy loss with L2Wrap from a
fresh state, gradients of every parameter.

* ``neuro``: ``SpikeGPT.loss`` + ``backward`` (C++ WKV and LIF kernels).
* ``SpikingJelly``: the reference's GPT mode rebuilt with SpikingJelly 2.0's multi-step
  ``LIFNode(step_mode='m')`` (``activation_based``; 2.0 has no ``MultiStepLIFNode``, whose
  successor this is), ATan surrogate (alpha 2), the ``(B, T, C)`` layout permuted to time-first
  around the LIFs as the reference does, and an autograd WKV: the CUDA kernel's max-subtracted
  recurrence as a torch loop over T in float32 (what the reference runs without its kernel).
* ``SpikingJelly + C++ WKV``: the same, with neuro's C++ WKV op in place of the torch loop, to show
  what the WKV alone accounts for (the issue's 6.75 s figure was measured with the reference's
  kernel ported to the CPU).
* ``matmul floor``: the step's matrix products alone, ``x W^T``, ``dy W`` and ``dy^T x`` for every
  weight matrix (the 84 block matrices and the head; ``M = B x T`` rows of random float32
  activations) through :mod:`neuro.kernels.blas` (the faster of OpenBLAS and MKL per shape). The
  inputs of these products are LayerNorm outputs, real-valued, so every float32 implementation
  computes them densely: the time a float32 step of this network needs with this machine's BLAS
  at this moment, and ``SpikingJelly / matmul floor`` the largest ratio it allows.

The first loss of every S2 implementation is compared with neuro's (``first_loss``).

Method: every measurement in a fresh worker process, 1 thread (``torch.set_num_threads(1)``,
OMP/MKL 1), implementations interleaved with the order rotated each round; figures are medians
over rounds of the process CPU time (the machine is shared, and CPU time is what the work costs
at one thread; wall times are kept in the JSON). Peak memory of S2: a fresh process per
implementation with ``MALLOC_MMAP_THRESHOLD_=1048576`` (so the peak follows live memory), one
warm-up step at T = 16, then ``ru_maxrss`` after one full step minus the resident set before it
(MiB; the absolute ``ru_maxrss`` is in the JSON); in the first ``--mem-rounds`` rounds (default 1:
the figure is deterministic up to a few MiB, and a full step of the peer takes a while).

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/spikegpt_speed.py            # 3 rounds (--rounds N)
    PYTHONPATH=. python benchmarks/spikegpt_speed.py --quick    # 1 round, 16 tokens, T = 32
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import check_installed, machine_info, maxrss_bytes, rss_bytes, summary, write_results

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks" / "results" / "spikegpt_speed.json"
PRESET = "46M"
SEED = 0
S1_WARM, S1_TOKENS = 8, 64
S2_B, S2_T = 4, 256
GOALS = {"S1": 3.0, "S2": 4.0}  # reference / neuro (issue 15)
MEM_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 20)}
S1_IMPLS = ("neuro", "neuro_generic", "neuro_bf16", "neuro_int8", "reference_rnn", "rwkv",
            "weight_stream")
S1_FORMATS = {"neuro": "float32", "neuro_generic": "float32", "neuro_bf16": "bfloat16",
              "neuro_int8": "int8"}
S2_IMPLS = ("neuro", "spikingjelly", "spikingjelly_cppwkv", "matmul_floor")
S2_MODELS = S2_IMPLS[:3]  # the implementations of the whole step (first loss, peak memory)
LABELS = {"neuro": "neuro", "neuro_generic": "neuro (generic)", "neuro_bf16": "neuro bf16",
          "neuro_int8": "neuro int8", "reference_rnn": "reference RNN",
          "rwkv": "rwkv 0.8", "weight_stream": "weight stream", "spikingjelly": "SpikingJelly",
          "spikingjelly_cppwkv": "SpikingJelly + C++ WKV",
          "matmul_floor": "matmul floor"}


# -- weights ---------------------------------------------------------------------------------
def make_weights(path: Path) -> int:
    """Build the benchmark's random weights (module docstring), save them under the reference's
    names to ``path`` (``.pth``); return the parameter count."""
    import torch

    from neuro.models.spikegpt import SpikeGPT, SpikeGPTConfig

    torch.manual_seed(SEED)
    model = SpikeGPT(SpikeGPTConfig.preset(PRESET))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".weight") and p.dim() == 2:
                p.normal_(0, 1 / p.shape[1] ** 0.5)
        for block in model.blocks:
            block.att.key.weight.mul_(3)
            block.att.output.weight.mul_(20)
            block.ffn.value.weight.mul_(40)
        model.emb.weight.normal_()
    torch.save({k: v.detach().clone() for k, v in model.named_parameters()}, path)
    return sum(p.numel() for p in model.parameters())


def _neuro_model(path: str, **overrides: Any):
    from neuro.models.spikegpt import load_reference

    return load_reference(path, **overrides)


def _tokens(n: int, vocab: int) -> list[int]:
    import torch

    return torch.randint(0, vocab, (n,), generator=torch.Generator().manual_seed(SEED + 1)).tolist()


# -- the reference's RNN mode, re-implemented in plain torch -----------------------------------
class _LIFNode:
    """SpikingJelly's single-step ``LIFNode()`` as the reference's RNN mode creates it (tau 2,
    decay_input, threshold 1, hard reset to 0); its membrane persists across calls."""

    def __init__(self, tau: float = 2.0, v_threshold: float = 1.0, v_reset: float = 0.0) -> None:
        self.tau, self.v_threshold, self.v_reset = tau, v_threshold, v_reset
        self.v: Any = 0.0

    def __call__(self, x):
        self.v = self.v + (x - self.v) / self.tau  # neuronal_charge (decay_input, v_reset 0)
        spike = ((self.v - self.v_threshold) >= 0).to(x.dtype)  # neuronal_fire (Heaviside)
        self.v = (1.0 - spike) * self.v + spike * self.v_reset  # hard reset
        return spike


class ReferenceRNN:
    """``RWKV_RNN`` of the reference's ``src/model_run.py`` (fp32, CPU), on a state dict.

    ``forward(ctx, state, mem1, mem2) -> (logits [V], state [5L, C], mem1, mem2)`` with ``ctx`` the
    token ids so far (only the last is read). ``rescale``/``binary`` switch the two RNN-mode quirks
    (``None``: the reference's rule, the embedding Heaviside only when V == 77).
    """

    RESCALE_LAYER = 6

    def __init__(self, sd: dict, rescale: bool = True, binary: bool | None = None) -> None:
        import torch

        self.w: dict[str, Any] = {}
        for k, t in sd.items():
            t = t.float().clone()
            block = int(k.split(".")[1]) if k.startswith("blocks.") else 0
            if rescale and ("att.output.weight" in k or "ffn.value.weight" in k):
                t = t / (2 ** (block // self.RESCALE_LAYER))
            if ".time_" in k:
                t = t.squeeze()
            if ".time_decay" in k:
                t = -torch.exp(t)
            self.w[k] = t
        self.V, self.C = self.w["emb.weight"].shape
        self.L = 1 + max(int(k.split(".")[1]) for k in self.w if k.startswith("blocks."))
        self.rescale = rescale
        self.binary = (self.V == 77) if binary is None else binary

    def LN(self, x, p: str):
        import torch.nn.functional as F

        return F.layer_norm(x, (self.C,), weight=self.w[p + ".weight"], bias=self.w[p + ".bias"])

    def FF(self, x, state, i: int, mem):
        import torch

        w, p = self.w, f"blocks.{i}.ffn."
        xk = x * w[p + "time_mix_k"] + state[5 * i + 0] * (1 - w[p + "time_mix_k"])
        xr = x * w[p + "time_mix_r"] + state[5 * i + 0] * (1 - w[p + "time_mix_r"])
        state[5 * i + 0] = x
        r = torch.sigmoid(w[p + "receptance.weight"] @ xr)
        k = torch.square(torch.relu(w[p + "key.weight"] @ xk))
        kv = w[p + "value.weight"] @ k
        return mem[i](r * kv)

    def SA(self, x, state, i: int, mem):
        import torch

        w, p = self.w, f"blocks.{i}.att."
        sx = state[5 * i + 1]
        xk = x * w[p + "time_mix_k"] + sx * (1 - w[p + "time_mix_k"])
        xv = x * w[p + "time_mix_v"] + sx * (1 - w[p + "time_mix_v"])
        xr = x * w[p + "time_mix_r"] + sx * (1 - w[p + "time_mix_r"])
        state[5 * i + 1] = x
        r = torch.sigmoid(w[p + "receptance.weight"] @ xr)
        k = w[p + "key.weight"] @ xk
        v = w[p + "value.weight"] @ xv
        aa, bb, pp = state[5 * i + 2], state[5 * i + 3], state[5 * i + 4]
        ww = w[p + "time_first"] + k
        q = torch.maximum(pp, ww)
        e1, e2 = torch.exp(pp - q), torch.exp(ww - q)
        a, b = e1 * aa + e2 * v, e1 * bb + e2
        ww = pp + w[p + "time_decay"]
        q = torch.maximum(ww, k)
        e1, e2 = torch.exp(ww - q), torch.exp(k - q)
        state[5 * i + 2] = e1 * aa + e2 * v
        state[5 * i + 3] = e1 * bb + e2
        state[5 * i + 4] = q
        return mem[i](w[p + "output.weight"] @ (r * (a / b)))

    def forward(self, ctx: list[int], state, mem1, mem2):
        import torch

        with torch.no_grad():
            x = self.w["emb.weight"][ctx[-1]]
            if self.binary:
                x = (x >= 0).to(x.dtype)  # ATan()'s forward
            if state is None:
                state = torch.zeros(self.L * 5, self.C)
                for i in range(self.L):
                    state[5 * i + 4] -= 1e30
                mem1 = [_LIFNode() for _ in range(self.L)]
                mem2 = [_LIFNode() for _ in range(self.L)]
            for i in range(self.L):
                if i == 0:
                    x = self.LN(x, "blocks.0.ln0")
                x = x + self.SA(self.LN(x, f"blocks.{i}.ln1"), state, i, mem1)
                x = x + self.FF(self.LN(x, f"blocks.{i}.ln2"), state, i, mem2)
                if self.rescale and (i + 1) % self.RESCALE_LAYER == 0:
                    x = x / 2
            x = self.LN(x, "ln_out")
            return (self.w["head.weight"] @ x).float(), state, mem1, mem2


# -- S2 peer: the reference's GPT mode on SpikingJelly 2.0 --------------------------------------
def _wkv_autograd(time_decay, u, k, v):
    """The reference CUDA kernel's forward as a torch loop over T (float32, max-subtracted):
    ``time_decay, u [C]``, ``k, v [B, T, C]`` -> ``y [B, T, C]``; autograd gives the backward."""
    import torch

    w = -torch.exp(time_decay)
    B, T, C = k.shape
    aa = k.new_zeros(B, C)
    bb = k.new_zeros(B, C)
    pp = k.new_full((B, C), -1e38)
    ys = []
    for t in range(T):
        kt, vt = k[:, t], v[:, t]
        ww = u + kt
        p = torch.maximum(pp, ww)
        e1, e2 = torch.exp(pp - p), torch.exp(ww - p)
        ys.append((e1 * aa + e2 * vt) / (e1 * bb + e2))
        ww = w + pp
        p = torch.maximum(ww, kt)
        e1, e2 = torch.exp(ww - p), torch.exp(kt - p)
        aa, bb, pp = e1 * aa + e2 * vt, e1 * bb + e2, p
    return torch.stack(ys, dim=1)


def _wkv_cpp(time_decay, u, k, v):
    """neuro's C++ WKV op (float64 arithmetic inside) on ``[B, T, C]``, for the ``_cppwkv`` peer."""
    from neuro.models.spikegpt.wkv import wkv

    y, _ = wkv(time_decay, u, k.transpose(0, 1), v.transpose(0, 1))
    return y.transpose(0, 1)


def _sj_model(sd: dict, wkv_fn: Callable):
    """The reference's ``GPT`` (``src/model.py``, model_type 'RWKV', no copy head) with
    SpikingJelly 2.0 multi-step LIF nodes; ``forward(idx [B, T], targets) -> (loss, logits)``."""
    import torch
    import torch.nn.functional as F
    from spikingjelly.activation_based import functional, neuron, surrogate
    from torch import nn

    from neuro.models.spikegpt.model import l2wrap

    V, C = sd["emb.weight"].shape
    L = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    H = sd["blocks.0.ffn.key.weight"].shape[0]

    def shift(x):  # nn.ZeroPad2d((0, 0, 1, -1)) on [B, T, C]
        return F.pad(x, (0, 0, 1, -1))

    class TimeMix(nn.Module):
        def __init__(self):
            super().__init__()
            self.time_decay = nn.Parameter(torch.zeros(C))
            self.time_first = nn.Parameter(torch.zeros(C))
            for n in ("k", "v", "r"):
                setattr(self, f"time_mix_{n}", nn.Parameter(torch.zeros(1, 1, C)))
            self.key, self.value = nn.Linear(C, C, bias=False), nn.Linear(C, C, bias=False)
            self.receptance, self.output = nn.Linear(C, C, bias=False), nn.Linear(C, C, bias=False)

        def forward(self, x):
            xx = shift(x)
            xk = x * self.time_mix_k + xx * (1 - self.time_mix_k)
            xv = x * self.time_mix_v + xx * (1 - self.time_mix_v)
            xr = x * self.time_mix_r + xx * (1 - self.time_mix_r)
            k, v, r = self.key(xk), self.value(xv), self.receptance(xr)
            y = wkv_fn(self.time_decay, self.time_first, k, v)
            return self.output(torch.sigmoid(r) * y)

    class ChannelMix(nn.Module):
        def __init__(self):
            super().__init__()
            self.time_mix_k = nn.Parameter(torch.zeros(1, 1, C))
            self.time_mix_r = nn.Parameter(torch.zeros(1, 1, C))
            self.key = nn.Linear(C, H, bias=False)
            self.receptance = nn.Linear(C, C, bias=False)
            self.value = nn.Linear(H, C, bias=False)

        def forward(self, x):
            xx = shift(x)
            xk = x * self.time_mix_k + xx * (1 - self.time_mix_k)
            xr = x * self.time_mix_r + xx * (1 - self.time_mix_r)
            k = torch.square(torch.relu(self.key(xk)))
            return torch.sigmoid(self.receptance(xr)) * self.value(k)

    def lif():
        return neuron.LIFNode(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0,
                              surrogate_function=surrogate.ATan(alpha=2.0), detach_reset=False,
                              step_mode="m")

    class Block(nn.Module):
        def __init__(self, i):
            super().__init__()
            self.i = i
            self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
            if i == 0:
                self.ln0 = nn.LayerNorm(C)
            self.att, self.ffn = TimeMix(), ChannelMix()
            self.lif1, self.lif2 = lif(), lif()

        def forward(self, x):
            if self.i == 0:
                x = self.ln0(x)
            # the reference permutes [B, T, C] -> [T, B, C] around each multi-step LIF
            x = x + self.lif1(self.att(self.ln1(x)).permute(1, 0, 2)).permute(1, 0, 2)
            return x + self.lif2(self.ffn(self.ln2(x)).permute(1, 0, 2)).permute(1, 0, 2)

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(V, C)
            self.blocks = nn.Sequential(*[Block(i) for i in range(L)])
            self.ln_out = nn.LayerNorm(C)
            self.head = nn.Linear(C, V, bias=False)
            self.atan = surrogate.ATan(alpha=2.0)

        def forward(self, idx, targets):
            functional.reset_net(self)  # the trainer resets the membranes for every batch
            x = self.blocks(self.atan(self.emb(idx)))
            logits = self.head(self.ln_out(x))
            loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
            return l2wrap(loss, logits), logits

    model = GPT()
    model.load_state_dict(sd)
    return model


# -- workers ---------------------------------------------------------------------------------
def _cpu_wall(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.process_time() - c0, time.perf_counter() - w0, out


def _s1_bytes(model: Any, toks: list[int], fmt: str) -> dict:
    """The fraction of hidden units with a non-zero ``relu(F_k f_k)^2`` over ``toks`` (the rows of
    ``ffn.value^T`` the fused step reads) and the weight bytes one token then reads in ``fmt``."""
    import torch

    active: list[float] = []
    hooks = [b.ffn.key.register_forward_hook(lambda m, i, o: active.append(float((o > 0).float()
                                                                                  .mean())))
             for b in model.blocks]
    with torch.inference_mode():
        model(torch.tensor(toks)[:, None])
    for h in hooks:
        h.remove()
    frac = sum(active) / len(active)
    size = {"float32": 4, "bfloat16": 2, "int8": 1}[fmt]
    mats = 0.0
    for b in model.blocks:
        for lin in (b.att.key, b.att.value, b.att.receptance, b.att.output, b.ffn.key,
                    b.ffn.receptance):
            mats += lin.weight.numel() + (lin.weight.shape[0] * 4 / size if fmt == "int8" else 0)
        w = b.ffn.value.weight
        mats += frac * (w.numel() + (w.shape[1] * 4 / size if fmt == "int8" else 0))
    head = model.head.weight
    mats += head.numel() + (head.shape[0] * 4 / size if fmt == "int8" else 0)
    return {"ffn_active": frac, "bytes_per_token": mats * size}


def worker_s1(impl: str, weights: str, tokens: int) -> dict:
    import torch

    toks = _tokens(S1_WARM + tokens, 256)
    res: dict[str, Any] = {}
    if impl in S1_FORMATS:
        model = _neuro_model(weights).eval()
        fused = impl != "neuro_generic"
        fmt = S1_FORMATS[impl]

        def run(ids: list[int]) -> None:
            state = None
            with torch.inference_mode():
                for t in ids:
                    _, state = model.step(torch.tensor([t]), state, fused=fused, weights=fmt)

        if fused:
            from neuro.models.spikegpt import step as step_kernel

            with torch.inference_mode():
                res["fused"] = step_kernel.usable(model, torch.tensor([0]))
            res.update(_s1_bytes(model, toks, fmt))
        if fmt != "float32":
            st = ns = None
            diff = 0.0
            with torch.inference_mode():
                for t in toks[:8]:
                    a, st = model.step(torch.tensor([t]), st)
                    b, ns = model.step(torch.tensor([t]), ns, weights=fmt)
                    diff = max(diff, float((a - b).abs().max()))
            res["check_max_abs_diff"] = diff
            res["check"] = f"{fmt} weights vs float32 weights (fused step), 8 tokens"
    elif impl == "reference_rnn":
        sd = torch.load(weights, weights_only=True)
        ref = ReferenceRNN(sd)
        # check: without the two RNN-mode quirks it is neuro's model
        plain = ReferenceRNN(sd, rescale=False, binary=True)
        model = _neuro_model(weights).eval()
        st = mem1 = mem2 = ns = None
        diff = 0.0
        with torch.inference_mode():
            for n, t in enumerate(toks[:8]):
                a, st, mem1, mem2 = plain.forward(toks[:n + 1], st, mem1, mem2)
                b, ns = model.step(torch.tensor([t]), ns)
                diff = max(diff, float((a - b[0]).abs().max()))
        res["check_max_abs_diff"] = diff
        res["check"] = "reference RNN without rescaling, with the Heaviside vs neuro, 8 tokens"
        del plain, model

        def run(ids: list[int]) -> None:
            state = mem1 = mem2 = None
            for n in range(len(ids)):
                _, state, mem1, mem2 = ref.forward(ids[:n + 1], state, mem1, mem2)
    elif impl == "rwkv":
        os.environ.setdefault("RWKV_CUDA_ON", "0")
        from rwkv.model import RWKV

        path = Path(weights)
        rw = RWKV(str(path), strategy="cpu fp32", verbose=False)
        plain = _neuro_model(weights, spiking=False, binary_embedding=False).eval()
        st = ns = None
        diff = 0.0
        with torch.inference_mode():
            for t in toks[:8]:
                a, st = rw.forward([t], st)
                b, ns = plain.step(torch.tensor([t]), ns)
                diff = max(diff, float((a - b[0]).abs().max()))
        res["check_max_abs_diff"] = diff
        res["check"] = "rwkv 0.8 vs neuro's non-spiking model (plain RWKV-4), 8 tokens"
        del plain

        def run(ids: list[int]) -> None:
            state = None
            for t in ids:
                _, state = rw.forward([t], state)
    elif impl == "weight_stream":
        model = _neuro_model(weights)
        mats = [p.detach() for n, p in model.named_parameters() if p.dim() == 2 and n != "emb.weight"]
        res["weight_bytes"] = sum(m.numel() * 4 for m in mats)

        def run(ids: list[int]) -> None:
            for _ in ids:
                for m in mats:
                    m.sum()
    else:
        raise SystemExit(f"unknown S1 impl {impl}")
    run(toks[:S1_WARM])
    gc.collect()
    cpu, wall, _ = _cpu_wall(lambda: run(toks[S1_WARM:]))
    res.update(cpu_ms=cpu / tokens * 1e3, wall_ms=wall / tokens * 1e3)
    return res


def _s2_data(T: int):
    import torch

    g = torch.Generator().manual_seed(SEED + 2)
    seq = torch.randint(0, 256, (S2_B, T + 1), generator=g)
    return seq[:, :-1].contiguous(), seq[:, 1:].contiguous()  # [B, T] input and targets


def worker_s2(impl: str, weights: str, T: int, memory: bool) -> dict:
    import torch

    idx, tgt = _s2_data(T)
    if impl == "neuro":
        model = _neuro_model(weights).train()

        def loss_fn(i, t):
            loss, _, _ = model.loss(i.t().contiguous(), t.t().contiguous())
            return loss
    elif impl in ("spikingjelly", "spikingjelly_cppwkv"):
        sd = torch.load(weights, weights_only=True)
        model = _sj_model(sd, _wkv_autograd if impl == "spikingjelly" else _wkv_cpp).train()

        def loss_fn(i, t):
            return model(i, t)[0]
    elif impl == "matmul_floor":
        return _matmul_floor(weights, T)
    else:
        raise SystemExit(f"unknown S2 impl {impl}")
    params = list(model.parameters())

    def step(i, t) -> float:
        for p in params:
            p.grad = None
        loss = loss_fn(i, t)
        loss.backward()
        return float(loss.detach())

    res: dict[str, Any] = {}
    step(idx[:, :16], tgt[:, :16])  # warm-up: libraries, kernels, allocations
    gc.collect()
    if memory:
        baseline, before = rss_bytes(), maxrss_bytes()
        res["first_loss"] = step(idx, tgt)
        after = maxrss_bytes()
        mib = 1024.0 * 1024.0
        res.update(value=(after - baseline) / mib, baseline_rss_mib=baseline / mib,
                   maxrss_mib=after / mib, peak_reached=after > before)
        return res
    cpu, wall, loss = _cpu_wall(lambda: step(idx, tgt))
    res.update(cpu_s=cpu, wall_s=wall, first_loss=loss)
    return res


def _matmul_floor(weights: str, T: int) -> dict:
    """CPU time of S2's three products per weight matrix at ``M = B x T`` rows (``matmul floor``)."""
    import torch

    from neuro.kernels import blas

    model = _neuro_model(weights)
    mats = [p.detach() for n, p in model.named_parameters() if p.dim() == 2 and n != "emb.weight"]
    M = S2_B * T
    g = torch.Generator().manual_seed(SEED + 4)
    shapes = sorted({tuple(w.shape) for w in mats})
    xs = {s: torch.randn(M, s[1], generator=g) for s in shapes}  # layer input [M, in]
    dys = {s: torch.randn(M, s[0], generator=g) for s in shapes}  # output gradient [M, out]
    outs = {s: (torch.empty(M, s[0]), torch.empty(M, s[1]), torch.empty(s[0], s[1]))
            for s in shapes}

    def step() -> None:
        for w in mats:
            s = tuple(w.shape)
            y, dx, dw = outs[s]
            blas.gemm(xs[s], w.t(), y)  # forward  y = x W^T
            blas.gemm(dys[s], w, dx)  # backward dx = dy W
            blas.gemm(dys[s].t(), xs[s], dw)  # backward dW = dy^T x

    step()  # warm-up
    cpu, wall, _ = _cpu_wall(step)
    flop = sum(6 * M * w.shape[0] * w.shape[1] for w in mats)
    return {"cpu_s": cpu, "wall_s": wall, "first_loss": float("nan"), "matrices": len(mats),
            "gflop": flop / 1e9, "gflop_per_s": flop / 1e9 / cpu, "blas": blas.info()}


def _run_worker(args: list[str], extra_env: dict[str, str] | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env.update(extra_env or {})
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          env=env, cwd=REPO)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"worker {' '.join(args)} failed with status {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _worker_main(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(1)
    if args.worker == "s1":
        return worker_s1(args.impl, args.weights, args.tokens)
    return worker_s2(args.impl, args.weights, args.T, args.memory)


# -- driver ----------------------------------------------------------------------------------
def _rotate(jobs: list, r: int) -> list:
    order = jobs[r % len(jobs):] + jobs[:r % len(jobs)]
    return order[::-1] if r % 2 else order


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--quick", action="store_true", help="1 round, 16 tokens, T = 32")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--mem-rounds", type=int, default=1,
                   help="rounds that also measure S2's peak memory (default 1: it does not vary)")
    p.add_argument("--only", choices=("S1", "S2"), default=None, help="run one workload")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output ({DEFAULT_OUT})")
    p.add_argument("--worker", choices=("s1", "s2"), help=argparse.SUPPRESS)
    p.add_argument("--impl", help=argparse.SUPPRESS)
    p.add_argument("--weights", help=argparse.SUPPRESS)
    p.add_argument("--tokens", type=int, default=S1_TOKENS, help=argparse.SUPPRESS)
    p.add_argument("--T", type=int, default=S2_T, help=argparse.SUPPRESS)
    p.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker_main(args)))
        return 0
    versions = check_installed("spikegpt_speed", {"rwkv": "rwkv", "spikingjelly": "spikingjelly"})
    machine = machine_info(versions, 1)
    from neuro.models.spikegpt import step as step_kernel

    if not step_kernel.load():
        print(f"spikegpt_speed: the fused step kernel is not built ({step_kernel.build_error()})",
              file=sys.stderr)
        return 2
    rounds = args.rounds or (1 if args.quick else 3)
    tokens = 16 if args.quick else S1_TOKENS
    T = 32 if args.quick else S2_T
    workloads_run = [args.only] if args.only else ["S1", "S2"]
    per: dict[str, dict[str, list[float]]] = {"S1": {}, "S2": {}, "S2_mem": {}}
    info: dict[str, dict[str, dict]] = {"S1": {}, "S2": {}, "S2_mem": {}}
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "spikegpt46m.pth"
        n_params = make_weights(weights)
        print(f"SpikeGPT speed benchmark: {machine['cpu']}, {machine['cores']} cores, 1 thread, "
              f"{PRESET} preset ({n_params / 1e6:.1f} M parameters), {rounds} round(s)")
        jobs: list[tuple[str, str]] = []
        if "S1" in workloads_run:
            jobs += [("S1", impl) for impl in S1_IMPLS]
        if "S2" in workloads_run:
            jobs += [("S2", impl) for impl in S2_IMPLS]
        mem_jobs = [("S2_mem", impl) for impl in S2_MODELS] if "S2" in workloads_run else []
        for r in range(rounds):
            for w, impl in _rotate(jobs + (mem_jobs if r < args.mem_rounds else []), r):
                common = ["--impl", impl, "--weights", str(weights)]
                if w == "S1":
                    res = _run_worker(["--worker", "s1", *common, "--tokens", str(tokens)])
                    val, unit = res["cpu_ms"], "ms/token cpu"
                    extra = f"({res['wall_ms']:.1f} wall)"
                elif w == "S2":
                    res = _run_worker(["--worker", "s2", *common, "--T", str(T)])
                    val, unit = res["cpu_s"], "s cpu"
                    extra = f"({res['wall_s']:.2f} wall) loss {res['first_loss']:.6f}"
                    if impl == "matmul_floor":
                        extra = f"({res['wall_s']:.2f} wall) {res['gflop_per_s']:.1f} GFLOP/s"
                else:
                    res = _run_worker(["--worker", "s2", *common, "--T", str(T), "--memory"],
                                      MEM_ENV)
                    val, unit = res["value"], "MiB peak"
                    extra = f"(maxrss {res['maxrss_mib']:.0f} MiB)"
                per[w].setdefault(impl, []).append(val)
                if w == "S1":
                    per[w].setdefault(impl + ":wall", []).append(res["wall_ms"])
                elif w == "S2":
                    per[w].setdefault(impl + ":wall", []).append(res["wall_s"])
                info[w][impl] = res
                print(f"  round {r + 1} {w:6s} {LABELS[impl]:24s} {val:9.2f} {unit} {extra}",
                      flush=True)
    workloads = _report(per, info, rounds, tokens, T, args.quick)
    write_results(args.out, {"machine": machine, "workloads": workloads})
    print(f"wrote {args.out}")
    return 0


def _med(per: dict[str, list[float]], impl: str) -> float:
    return statistics.median(per[impl])


def _report(per: dict, info: dict, rounds: int, tokens: int, T: int, quick: bool) -> dict:
    workloads: dict[str, Any] = {}
    print()
    if per["S1"]:
        s1 = per["S1"]
        ms = {impl: _med(s1, impl) for impl in S1_IMPLS}
        floor_ms = ms["weight_stream"]
        ref = ms["reference_rnn"]
        neuro_ms = ms["neuro"]
        read = {LABELS[k]: {"ffn_active": info["S1"][k]["ffn_active"],
                            "bytes_per_token": info["S1"][k]["bytes_per_token"]}
                for k in ("neuro", "neuro_bf16", "neuro_int8")}
        workloads["S1"] = {
            "unit": "ms", "lower_is_better": True,
            "results": {LABELS[k]: v for k, v in ms.items()},
            "tokens_per_s": {LABELS[k]: 1e3 / v for k, v in ms.items()},
            "ratios": {"reference RNN/neuro": ref / neuro_ms,
                       "rwkv 0.8/neuro": ms["rwkv"] / neuro_ms,
                       "neuro (generic)/neuro": ms["neuro_generic"] / neuro_ms,
                       "neuro/weight stream": neuro_ms / floor_ms,
                       "reference RNN/neuro bf16": ref / ms["neuro_bf16"],
                       "reference RNN/neuro int8": ref / ms["neuro_int8"]},
            "goal": {"text": f"reference RNN/neuro >= {GOALS['S1']:.0f}",
                     "met": ref / neuro_ms >= GOALS["S1"]},
            "weights_read": read,
            "checks": {LABELS[k]: {"max_abs_diff": info["S1"][k]["check_max_abs_diff"],
                                   "what": info["S1"][k]["check"]}
                       for k in ("reference_rnn", "rwkv", "neuro_bf16", "neuro_int8")},
            "weight_bytes": info["S1"]["weight_stream"]["weight_bytes"],
            "stats": {k: summary(v) for k, v in s1.items()}, "rounds": s1,
            "config": {"preset": PRESET, "batch": 1, "tokens": tokens, "warmup": S1_WARM,
                       "dtype": "float32", "threads": 1, "rounds": rounds, "quick": quick,
                       "measure": "process CPU time per token of one step (logits out)"}}
        print(f"S1 streaming, batch 1, {tokens} tokens, ms/token (CPU time, 1 thread):")
        print(f"  {'implementation':24s} {'ms/token':>9s} {'tokens/s':>9s} {'x vs neuro':>10s}")
        for k in S1_IMPLS:
            print(f"  {LABELS[k]:24s} {ms[k]:9.2f} {1e3 / ms[k]:9.1f} {ms[k] / neuro_ms:10.2f}")
        print(f"  goal reference/neuro >= {GOALS['S1']:.0f}: {ref / neuro_ms:.2f} "
              f"({'met' if ref / neuro_ms >= GOALS['S1'] else 'NOT met'}); dense float32 weight "
              f"stream / neuro {floor_ms / neuro_ms:.2f}; reference/neuro bf16 "
              f"{ref / ms['neuro_bf16']:.2f}, int8 {ref / ms['neuro_int8']:.2f}")
        for k, v in read.items():
            print(f"  {k}: ffn.value rows read {v['ffn_active']:.0%}, "
                  f"{v['bytes_per_token'] / 1e6:.0f} MB of weights per token")
        for k in ("reference_rnn", "rwkv", "neuro_bf16", "neuro_int8"):
            print(f"  check {LABELS[k]}: max |logits diff| {info['S1'][k]['check_max_abs_diff']:.2e}"
                  f" ({info['S1'][k]['check']})")
    if per["S2"]:
        s2, mem = per["S2"], per["S2_mem"]
        sec = {impl: _med(s2, impl) for impl in S2_IMPLS}
        mib = {impl: _med(mem, impl) for impl in S2_MODELS}
        losses = {LABELS[k]: info["S2"][k]["first_loss"] for k in S2_MODELS}
        ratio = sec["spikingjelly"] / sec["neuro"]
        floor = sec["matmul_floor"]
        floor_info = info["S2"]["matmul_floor"]
        workloads["S2"] = {
            "unit": "s", "lower_is_better": True,
            "results": {LABELS[k]: v for k, v in sec.items()},
            "ratios": {**{f"{LABELS[k]}/neuro": sec[k] / sec["neuro"]
                          for k in S2_MODELS if k != "neuro"},
                       "SpikingJelly/matmul floor": sec["spikingjelly"] / floor,
                       "neuro/matmul floor": sec["neuro"] / floor},
            "goal": {"text": f"SpikingJelly/neuro >= {GOALS['S2']:.0f}", "met": ratio >= GOALS["S2"]},
            "matmul_floor": {"gflop": floor_info["gflop"], "matrices": floor_info["matrices"],
                             "gflop_per_s": floor_info["gflop_per_s"], "blas": floor_info["blas"],
                             "what": "x W^T, dy W and dy^T x for every weight matrix at B x T "
                                     "rows through neuro.kernels.blas; the largest possible "
                                     "SpikingJelly/neuro is SpikingJelly / this"},
            "first_loss": losses,
            "first_loss_max_abs_diff": max(abs(v - losses["neuro"]) for v in losses.values()),
            "stats": {k: summary(v) for k, v in s2.items()}, "rounds": s2,
            "config": {"preset": PRESET, "batch": S2_B, "T": T, "dtype": "float32", "threads": 1,
                       "rounds": rounds, "quick": quick,
                       "measure": "process CPU time of one forward + backward from a fresh state"}}
        workloads["S2_memory"] = {
            "unit": "MiB", "lower_is_better": True,
            "results": {LABELS[k]: v for k, v in mib.items()},
            "ratios": {f"{LABELS[k]}/neuro": mib[k] / mib["neuro"] for k in S2_MODELS if k != "neuro"},
            "maxrss_mib": {LABELS[k]: info["S2_mem"][k]["maxrss_mib"] for k in S2_MODELS},
            "stats": {k: summary(v) for k, v in mem.items()}, "rounds": mem,
            "config": {"measure": "ru_maxrss after one S2 step minus the resident set before it, "
                                  "fresh process, MALLOC_MMAP_THRESHOLD_=1048576"}}
        print(f"\nS2 training step, B {S2_B}, T {T}, forward + backward (CPU time, 1 thread):")
        print(f"  {'implementation':24s} {'s':>8s} {'x vs neuro':>10s} {'peak MiB':>9s} "
              f"{'first loss':>11s}")
        for k in S2_MODELS:
            print(f"  {LABELS[k]:24s} {sec[k]:8.2f} {sec[k] / sec['neuro']:10.2f} {mib[k]:9.0f} "
                  f"{losses[LABELS[k]]:11.6f}")
        print(f"  {LABELS['matmul_floor']:24s} {floor:8.2f} {floor / sec['neuro']:10.2f}  "
              f"({floor_info['gflop']:.0f} GFLOP at {floor_info['gflop_per_s']:.1f} GFLOP/s)")
        print(f"  goal SpikingJelly/neuro >= {GOALS['S2']:.0f}: {ratio:.2f} "
              f"({'met' if ratio >= GOALS['S2'] else 'NOT met'}); SpikingJelly / matmul floor "
              f"{sec['spikingjelly'] / floor:.2f} (the most a step with these dense products allows)")
    if not math.isfinite(sum(v for w in per.values() for vs in w.values() for v in vs)):
        print("WARNING: a measurement is not finite", file=sys.stderr)
    return workloads


if __name__ == "__main__":
    sys.exit(main())
