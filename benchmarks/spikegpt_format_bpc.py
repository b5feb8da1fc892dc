"""Held-out bits per character of a SpikeGPT checkpoint streamed token by token with float32,
bfloat16 and int8 weights (``SpikeGPT.step(weights=...)``, the fused C++ step).

    python benchmarks/spikegpt_format_bpc.py CHECKPOINT [--windows 4] [--tokens 512]

Text: the held-out Shakespeare text of the offline corpus (``neuro.datasets.text.load_shakespeare``,
the checkpoint's own tokenizer when it stores one, else bytes); ``--windows`` consecutive windows
of ``--tokens`` tokens, run as one batch of ``--windows`` sequences from a fresh state. BPC is the
mean cross-entropy in bits of the logits at token ``t`` against token ``t + 1``; also reported:
how often the most likely next token agrees with float32's, and the largest logits difference.
Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import math

import torch


def main() -> None:
    from neuro.checkpoint import load_checkpoint
    from neuro.datasets import text

    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--windows", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=512)
    a = ap.parse_args()
    torch.set_num_threads(1)
    model, _ = load_checkpoint(a.checkpoint)
    model.eval()
    corpus = text.load_shakespeare(tokenizer="byte")
    B, T = a.windows, a.tokens
    ids = torch.as_tensor(corpus.valid[: B * T], dtype=torch.int64).reshape(B, T).T
    logits: dict[str, torch.Tensor] = {}
    for fmt in ("float32", "bfloat16", "int8"):
        state, out = None, []
        with torch.inference_mode():
            for t in range(T):
                z, state = model.step(ids[t], state, weights=fmt)
                out.append(z)
        logits[fmt] = torch.stack(out)
    res: dict[str, object] = {"checkpoint": a.checkpoint, "tokens": f"{B} x {T} held-out"}
    for fmt, z in logits.items():
        nll = torch.nn.functional.cross_entropy(z[:-1].reshape(-1, z.shape[-1]).double(),
                                                ids[1:].reshape(-1))
        res[f"bpc_{fmt}"] = round(float(nll) / math.log(2), 4)
        if fmt != "float32":
            ref = logits["float32"]
            res[f"argmax_agreement_{fmt}"] = round(float((z.argmax(-1) == ref.argmax(-1))
                                                         .float().mean()), 4)
            res[f"max_abs_logit_diff_{fmt}"] = float((z - ref).abs().max())
    print(json.dumps(res))


if __name__ == "__main__":
    main()
