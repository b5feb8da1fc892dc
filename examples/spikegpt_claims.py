"""SpikeGPT vs the same network without spiking units vs a GRU: held-out BPC at equal parameters
and equal training tokens, on the offline corpus (Shakespeare, byte tokens).

    python examples/spikegpt_claims.py --steps 2000 --seeds 0 1 2 --out examples/results/spikegpt_claims.json
    python examples/spikegpt_claims.py --steps 2000 --seeds 0 --models gru --out gru.json  # one model

Models (byte vocabulary, 256):
* ``spikegpt``: the ``tiny`` preset (4 blocks x 128 channels), LIF units on both sub-layers;
* ``rwkv`` (non-spiking): the same network with the LIFs replaced by the identity
  (``SpikeGPTConfig(spiking=False)``);
* ``gru``: embedding, a 2-layer GRU and a linear head, hidden width chosen so the parameter count
  is the closest to SpikeGPT's.

Every model sees the same windows (``--steps`` x ``--batch-size`` x ``--ctx-len`` tokens, the same
random draws for a seed) with the same recipe (:func:`neuro.models.spikegpt.training.fit`'s
AdamW settings); the held-out BPC is measured on the first ``--eval-tokens`` bytes of the held-out
plays, carrying the state across chunks. The issue asks for as many tokens as 20 CPU-minutes allow
per model; ``--steps`` sets the budget, and the JSON records the tokens and seconds used.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neuro.datasets.text import batches, load_shakespeare, sequential_windows
from neuro.models.spikegpt import SpikeGPT, SpikeGPTConfig
from neuro.models.spikegpt.training import evaluate_bpc, fit, lr_at

MODELS = ("spikegpt", "rwkv", "gru")


class CharGRU(nn.Module):
    """Embedding -> GRU (time-first) -> linear head; ``forward(idx, state) -> (logits, state)``."""

    def __init__(self, vocab: int, hidden: int, layers: int = 2) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, hidden)
        self.gru = nn.GRU(hidden, hidden, num_layers=layers)
        self.head = nn.Linear(hidden, vocab, bias=False)

    def forward(self, idx, state=None):
        y, state = self.gru(self.emb(idx), state)
        return self.head(y), state


def gru_matching(n_params: int, vocab: int) -> CharGRU:
    """The 2-layer GRU (hidden a multiple of 8) whose parameter count is closest to ``n_params``."""

    def count(h: int) -> int:
        return 2 * vocab * h + 2 * (3 * (2 * h * h + 2 * h))

    return CharGRU(vocab, min(range(8, 2048, 8), key=lambda h: abs(count(h) - n_params)))


def fit_gru(model: CharGRU, train: np.ndarray, *, steps: int, batch_size: int, ctx_len: int,
            lr: float, seed: int) -> None:
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), eps=4e-9,
                            weight_decay=0.0)
    for step, (x, y) in enumerate(batches(train, ctx_len, batch_size, seed=seed, steps=steps)):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr, 1e-5, 10)
        logits, _ = model(torch.from_numpy(x))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y).reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()


@torch.no_grad()
def bpc_gru(model: CharGRU, data: np.ndarray, ctx_len: int) -> float:
    total, count, state = 0.0, 0, None
    for x, y in sequential_windows(data, ctx_len, 4):
        logits, state = model(torch.from_numpy(x), state)
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(),
                                       torch.from_numpy(y).reshape(-1), reduction="sum"))
        count += y.size
    return total / count / math.log(2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--ctx-len", type=int, default=128)
    ap.add_argument("--lr", type=float, default=6e-4)
    ap.add_argument("--eval-tokens", type=int, default=100_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                    help="which models to train (default: all three)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="examples/results/spikegpt_claims.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    corpus = load_shakespeare()
    valid = corpus.valid[: args.eval_tokens + 1]
    results: dict[str, dict[str, list[float]]] = {}
    sizes: dict[str, int] = {}
    for seed in args.seeds:
        for name in args.models:
            torch.manual_seed(seed)
            cfg = SpikeGPTConfig.preset("tiny", spiking=(name == "spikegpt"),
                                        ctx_len=args.ctx_len)
            t0 = time.perf_counter()
            if name == "gru":
                model = gru_matching(cfg.n_params(), cfg.vocab_size)
                fit_gru(model, corpus.train, steps=args.steps, batch_size=args.batch_size,
                        ctx_len=args.ctx_len, lr=args.lr, seed=seed)
                bpc = bpc_gru(model.eval(), valid, args.ctx_len)
            else:
                model = SpikeGPT(cfg)
                fit(model, corpus.train, None, steps=args.steps, batch_size=args.batch_size,
                    lr=args.lr, seed=seed, progress=False)
                bpc = evaluate_bpc(model, valid, batch_size=4)
            secs = time.perf_counter() - t0
            sizes[name] = sum(p.numel() for p in model.parameters())
            r = results.setdefault(name, {"valid_bpc": [], "seconds": []})
            r["valid_bpc"].append(bpc)
            r["seconds"].append(secs)
            print(f"seed {seed} {name:8s} params {sizes[name]:,}  held-out bpc {bpc:.3f}  "
                  f"{secs:.0f} s", flush=True)
    out = {
        "machine": {"platform": platform.platform(), "threads": args.threads,
                    "torch": torch.__version__},
        "setup": {"corpus": corpus.source, "train_tokens_per_model":
                  args.steps * args.batch_size * args.ctx_len, "eval_tokens": len(valid) - 1,
                  **{k: v for k, v in vars(args).items() if k != "out"}},
        "params": sizes,
        "results": {k: {**v, "mean_bpc": float(np.mean(v["valid_bpc"]))}
                    for k, v in results.items()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["results"], indent=1))


if __name__ == "__main__":
    main()
