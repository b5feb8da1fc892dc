"""BPC of the integer SpikeGPT (``neuro.graph.spikegpt_int``) against the float model.

    python benchmarks/spikegpt_int_bpc.py CHECKPOINT [--windows 8] [--tokens 256] [--format int8]

Both run the checkpoint's graph on the held-out Shakespeare text of the offline corpus
(``neuro.datasets.text.load_shakespeare``, byte tokens): ``--windows`` consecutive windows of
``--tokens`` tokens, each from a fresh state; BPC is the mean cross-entropy (bits) of the logits
at token ``t`` against token ``t + 1``. The float model is the float reference executor (the
graph reproduces the PyTorch model), the integer one the integer reference executor (the FPGA
ONNX step graph is bit-exact with it). Calibration (the activation fraction bits): the first
4 x 128 tokens of the training text. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def bpc(logits: np.ndarray, ids: np.ndarray) -> float:
    """Mean bits per character of ``logits [T, B, V]`` predicting ``ids[1:]``."""
    z = logits[:-1].astype(np.float64)
    z = z - z.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, ids[1:, :, None], -1)[..., 0]
    return float(nll.mean() / np.log(2))


def main() -> None:
    from neuro.checkpoint import load_checkpoint
    from neuro.datasets import text
    from neuro.graph import from_module, simulate
    from neuro.graph.spikegpt_int import quantize_spikegpt, simulate_spikegpt_int
    from neuro.models.spikegpt.graph import one_hot_tokens

    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--format", default="int8")
    ap.add_argument("--frac-bits", type=int, default=None)
    a = ap.parse_args()
    model, meta = load_checkpoint(a.checkpoint)
    g = from_module(model)
    V = int(g.nodes[g.inputs()[0]].shape[0])
    corpus = text.load_shakespeare(tokenizer="byte")
    B, T = a.windows, a.tokens
    ids = np.asarray(corpus.valid[: B * T], np.int64).reshape(B, T).T
    calib = one_hot_tokens(np.asarray(corpus.train[: 4 * 128], np.int64).reshape(4, 128).T, V)
    x = one_hot_tokens(ids, V)
    t0 = time.perf_counter()
    q = quantize_spikegpt(g, a.format, calib, frac_bits=a.frac_bits)
    F = q.metadata["spikegpt_int"]["frac_bits"]
    lf = simulate(g, x)["output"].numpy()
    t1 = time.perf_counter()
    li = simulate_spikegpt_int(q, {"input": x.astype(np.int64)})["output"] / 2.0 ** F
    t2 = time.perf_counter()
    bf, bi = bpc(lf, ids), bpc(li, ids)
    print(json.dumps({"checkpoint": a.checkpoint, "format": a.format, "frac_bits": F,
                      "tokens": f"{B} x {T} held-out", "bpc_float": round(bf, 4),
                      "bpc_int": round(bi, 4), "delta": round(bi - bf, 4),
                      "argmax_agreement": round(float((lf.argmax(-1) == li.argmax(-1)).mean()), 4),
                      "seconds_float": round(t1 - t0, 1), "seconds_int": round(t2 - t1, 1)}))


if __name__ == "__main__":
    main()
