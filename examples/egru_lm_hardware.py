"""A trained EGRU language model on the integer targets: perplexity float vs integer, traffic and
energy per token on the SpiNNaker-style simulator against a dense GRU and the GPU/CPU baseline.

The setting of Nazeer et al. (2024: a pruned 3-layer EGRU LM on SpiNNaker 2, 5-18x less energy
per inference than a GPU), in small: the checkpoint of ``neuro train egru --task lm`` on the
offline word-level Shakespeare corpus (README, "EGRU on the hardware targets", gives the command).

1. **Perplexity** on held-out text (the corpus' test split: ``--streams`` consecutive windows of
   ``--tokens`` words, each from a zero state; target = the next word): the float graph
   (``neuro.graph.simulate``), the integer reference executor in ``spinnaker`` (s16.15) and FPGA
   ``int16`` (12 fraction bits), and ``int16`` with 8-bit weight mantissas (a format variant run
   by the reference executor only: the FPGA target lists ``int16`` for EGRU). Integer logits are
   divided by ``2^F`` before the softmax. No calibration or QAT: the fixed-point forms have no
   free scale (weights get the widest fraction their largest entry allows, per matrix).
2. **Traffic per token** on the SpiNNaker simulator (the ``spinnaker`` artifact of the whole LM:
   embedding source, EGRU layers, decoder readout; bit-exact with the integer reference executor,
   checked here): packets (the embedding row, ``emb_dim`` dense packets per token, plus one graded
   packet per EGRU event), payload bytes, synaptic events (payload x stored weight, the decoder
   included and also given apart), rows fetched; against a GRU of the same sizes on the same
   machine model, computed (every unit sends every step): dense rows, and the EGRU's pruned rows.
3. **Energy per token** from ``neuro/energy/costs.json``: ``spinnaker2`` priced from the
   simulator's statistics (20 pJ per synaptic event, 65 pJ per neuron update: order-of-magnitude
   figures, no static power; the embedding row reads and the decoder's logit updates are not
   priced) against the ANN twin (every connection a MAC every step, the decoder included) on
   ``ann-gpu`` and ``ann-cpu`` (board/package power over peak FP32 rate: best case for them).

Run: ``python examples/egru_lm_hardware.py --checkpoint CKPT [--tokens 500 --streams 4]``
(writes ``examples/results/egru_lm_hardware.json``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from neuro.checkpoint import load_checkpoint
from neuro.energy.costs import load_cost_table
from neuro.energy.counting import count
from neuro.energy.estimate import estimate
from neuro.graph import from_module, simulate
from neuro.graph.egru_lm_int import dequantize_logits
from neuro.graph.formats import INT16
from neuro.graph.intsim import simulate_int
from neuro.graph.quantize import quantize
from neuro.hardware import spinnaker
from neuro.models.egru.training import offline_corpus
from neuro.models.spikegpt.graph import one_hot_tokens


def nll(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean negative log-likelihood (nats per word) of ``targets [T, B]`` under ``logits``."""
    lg = np.asarray(logits, np.float64)
    m = lg.max(-1, keepdims=True)
    logz = m[..., 0] + np.log(np.exp(lg - m).sum(-1))
    picked = np.take_along_axis(lg, targets[..., None], -1)[..., 0]
    return float((logz - picked).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--tokens", type=int, default=500, help="words per stream")
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--out", type=Path, default=Path("examples/results/egru_lm_hardware.json"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    model, meta = load_checkpoint(a.checkpoint)
    info = meta.get("info", {})
    want = list(info.get("vocab", []))
    for max_vocab in (len(want) + 1, len(want)):  # max_vocab counts a slot <unk> may not fill
        corpus = offline_corpus(max_vocab=max_vocab, log=lambda *_: None)
        if list(corpus.vocab.itos) == want:
            break
    else:
        raise SystemExit(f"{a.checkpoint}: its vocabulary is not the offline corpus' ({corpus.name})")
    T, B = a.tokens, a.streams
    ids = corpus.test[: B * (T + 1)].numpy().reshape(B, T + 1).T  # [T + 1, B] consecutive windows
    x = np.asarray(one_hot_tokens(ids[:-1], model.config.vocab_size), np.float32)
    targets = ids[1:]
    g = from_module(model.eval())
    ppl: dict[str, float] = {}
    with torch.no_grad():
        f_logits = simulate(g, x)["output"].numpy()
    ppl["float"] = float(np.exp(nll(f_logits, targets)))
    int8w = dataclasses.replace(INT16, name="int16-w8", weight_bits=8)
    graphs = {}
    for name, fmt in (("spinnaker", "spinnaker"), ("int16", "int16"), ("int16-w8", int8w)):
        q = quantize(g, fmt)
        graphs[name] = q
        out = simulate_int(q, {"input": x.astype(np.int64)})["output"]
        ppl[name] = float(np.exp(nll(dequantize_logits(out, q), targets)))
    loss = {k: v / ppl["float"] - 1.0 for k, v in ppl.items() if k != "float"}
    print(f"perplexity on {T * B} held-out words ({B} windows of {T}): "
          + ", ".join(f"{k} {v:.2f}" for k, v in ppl.items()))

    q = graphs["spinnaker"]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        res = spinnaker.run(spinnaker.compile(q, Path(d) / "a"), x)
    sim_s = time.perf_counter() - t0
    ref = simulate_int(q, {"input": x.astype(np.int64)}, record=True)
    exact = all(np.array_equal(v, ref[n]) for n, v in res.spikes.items()) and np.array_equal(
        res.outputs["output"], ref["output"])
    s, n_tok = res.stats, T * B
    cfg = model.config
    sizes = [cfg.emb_dim, *cfg.hidden_sizes]
    V, H_last = cfg.vocab_size, cfg.hidden_sizes[-1]
    egru = [n for n in q.nodes if q.nodes[n].kind == "EGRU"]
    nnz = sum(int(np.count_nonzero(q.nodes[n].kernel)) + int(np.count_nonzero(q.nodes[n].recurrent_kernel))
              for n in egru)
    dec_nnz = int(np.count_nonzero(q.nodes["decoder"].weight))
    dense_w = sum((i + h) * 3 * h for i, h in zip(sizes[:-1], sizes[1:]))
    gru_packets = cfg.emb_dim + sum(cfg.hidden_sizes)
    per_tok = {k: s[k] / n_tok for k in ("packets_sent", "payload_bytes", "dense_input_packets",
                                          "synaptic_events", "readout_synaptic_events",
                                          "synaptic_rows_fetched", "readout_rows_fetched",
                                          "embedding_row_reads", "neuron_updates", "router_hops")}
    dense_gru = {"packets_sent": gru_packets, "payload_bytes": 4 * gru_packets,
                 "dense_input_packets": cfg.emb_dim,
                 "synaptic_events": dense_w + H_last * V, "readout_synaptic_events": H_last * V}
    pruned_gru = {"packets_sent": gru_packets, "payload_bytes": 4 * gru_packets,
                  "dense_input_packets": cfg.emb_dim,
                  "synaptic_events": nnz + dec_nnz, "readout_synaptic_events": dec_nnz}
    table = load_cost_table()
    c_int = count(q, x, progress=False)
    c_float = count(g, x, progress=False)
    e = {"spinnaker2_egru": estimate(c_int, table.targets["spinnaker2"], s).total_J / n_tok,
         "ann_gpu_dense": estimate(c_float, table.targets["ann-gpu"]).total_J / n_tok,
         "ann_cpu_dense": estimate(c_float, table.targets["ann-cpu"]).total_J / n_tok}
    activity = {n: float((res.spikes[n] != 0).mean()) for n in egru}
    out = {
        "checkpoint": str(a.checkpoint), "corpus": corpus.name,
        "model": {"vocab": V, "emb_dim": cfg.emb_dim, "hidden_sizes": cfg.hidden_sizes,
                  "thr_mean": cfg.thr_mean, "weight_sparsity_egru": info.get("weight_sparsity"),
                  "recorded_test_ppl": info.get("test", {}).get("ppl"),
                  "event_rate_per_layer": activity},
        "data": f"corpus test split, {B} consecutive windows of {T} words, each from a zero state",
        "perplexity": ppl, "relative_loss_vs_float": loss,
        "per_token": {"egru_spinnaker": per_tok, "dense_gru_same_machine": dense_gru,
                      "pruned_gru_same_machine": pruned_gru, "energy_J": e},
        "ratios": {"packets_dense_gru_over_egru": gru_packets / per_tok["packets_sent"],
                   "synaptic_events_dense_gru_over_egru":
                       dense_gru["synaptic_events"] / per_tok["synaptic_events"],
                   "synaptic_events_pruned_gru_over_egru":
                       pruned_gru["synaptic_events"] / per_tok["synaptic_events"],
                   "energy_gpu_over_spinnaker2": e["ann_gpu_dense"] / e["spinnaker2_egru"],
                   "energy_cpu_over_spinnaker2": e["ann_cpu_dense"] / e["spinnaker2_egru"]},
        "spinnaker_bit_exact_with_reference": bool(exact), "simulator_seconds": round(sim_s, 1),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1))
    print(f"event rate per layer {', '.join(f'{v:.3f}' for v in activity.values())}; "
          f"SpiNNaker bit-exact with the reference: {exact} ({sim_s:.0f} s)")
    print("| per token | EGRU on the simulator | GRU, same pruned weights | dense GRU |\n"
          "|---|---:|---:|---:|")
    for k in ("packets_sent", "dense_input_packets", "payload_bytes", "synaptic_events",
              "readout_synaptic_events"):
        print(f"| {k} | {per_tok[k]:,.0f} | {pruned_gru[k]:,.0f} | {dense_gru[k]:,.0f} |")
    print(f"| rows fetched | {per_tok['synaptic_rows_fetched']:,.0f} | - | - |")
    print(f"energy per token: SpiNNaker 2 {e['spinnaker2_egru'] * 1e6:.2f} uJ, GPU "
          f"{e['ann_gpu_dense'] * 1e6:.2f} uJ ({out['ratios']['energy_gpu_over_spinnaker2']:.1f}x), "
          f"CPU {e['ann_cpu_dense'] * 1e6:.2f} uJ ({out['ratios']['energy_cpu_over_spinnaker2']:.1f}x); "
          f"written {a.out}")


if __name__ == "__main__":
    main()
