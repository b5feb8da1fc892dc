"""Traffic and energy per token of an EGRU language model on the SpiNNaker-style simulator.

The setting of Nazeer et al. (2024; 3 EGRU layers, 95 % of the weights pruned, stored as CSR, on
SpiNNaker 2), in small and with an **untrained** model: an ``EGRULanguageModel`` with random
weights (its own initialisation), magnitude-pruned to ``--sparsity``, fed random token ids. Its
activity is whatever those random weights give (printed); the numbers say what the machine counts
for that activity, not what a trained LM would do.

What is counted (per token = per step, the EGRU layers only; the embedding lookup and the tied
decoder run on the host and are left out on every side):

* EGRU on the simulator (bit-exact with the integer reference): packets (the dense embedding
  ``emb_dim`` values per token, plus one graded packet per EGRU event), payload bytes, synaptic
  events (payload x weight, one per stored weight of every fetched row), rows fetched, neuron
  updates (every unit every step);
* a GRU of the same sizes on the same machine model (computed, not simulated: every unit sends
  its value every step): packets ``emb + sum H``; synaptic events ``sum (in + H) 3H`` with dense
  rows, or the number of stored weights with the EGRU's pruned rows (weight sparsity alone);
* energy per token from ``neuro/energy/costs.json``: ``spinnaker2`` (simulator statistics: 20 pJ
  per synaptic event, 65 pJ per neuron update: the LIF-based figures, which undercount an EGRU
  update's three table lookups and multiplies) against the ANN twin (every connection a MAC every
  step) on ``ann-gpu`` and ``ann-cpu`` (board/package power over peak FP32 rate: best case for
  the GPU/CPU).

Run: ``python examples/egru_spinnaker_energy.py [--tokens 200] [--out examples/results/...]``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from neuro.energy.costs import load_cost_table
from neuro.energy.counting import count
from neuro.energy.estimate import estimate
from neuro.graph import Graph
from neuro.graph import nodes as N
from neuro.graph.quantize import quantize
from neuro.hardware import spinnaker
from neuro.models.egru import EGRULanguageModel, EGRULMConfig
from neuro.models.egru.pruning import prune


def lm_graph(model: EGRULanguageModel) -> Graph:
    """Input (the embedding vector of the token, s16.15) -> EGRU layers -> Output."""
    nodes: dict[str, N.Node] = {"emb": N.Input(shape=(model.config.emb_dim,))}
    edges, prev = [], "emb"
    for i, layer in enumerate(model.layers):
        sd = layer.state_dict()
        nodes[f"egru{i}"] = N.EGRU(kernel=sd["kernel"].numpy(), recurrent_kernel=sd["recurrent_kernel"].numpy(),
                                   bias=sd["bias"].numpy(), recurrent_bias=sd["recurrent_bias"].numpy(),
                                   threshold=layer.threshold.detach().clamp(0, 1).numpy())
        edges.append((prev, f"egru{i}"))
        prev = f"egru{i}"
    nodes["out"] = N.Output()
    edges.append((prev, "out"))
    return Graph(nodes, edges, metadata={"input_frac_bits": 15}).validate()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--emb", type=int, default=128)
    ap.add_argument("--hidden", type=int, nargs="+", default=[256, 256, 128])
    ap.add_argument("--vocab", type=int, default=1000)
    ap.add_argument("--sparsity", type=float, default=0.95)
    ap.add_argument("--thr-mean", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("examples/results/egru_spinnaker_energy.json"))
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    cfg = EGRULMConfig(vocab_size=a.vocab, emb_dim=a.emb, hidden_sizes=a.hidden, thr_mean=a.thr_mean)
    model = EGRULanguageModel(cfg).eval()
    achieved = prune(model, a.sparsity)
    g = lm_graph(model)
    tokens = torch.randint(0, a.vocab, (a.tokens,))
    emb = model.embedding.weight.detach()[tokens].numpy()  # [T, E] real values
    x = np.round(emb.astype(np.float64) * 2**15)[:, None, :]  # s16.15
    q = quantize(g, "spinnaker")
    t0 = time.perf_counter()
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        art = spinnaker.compile(q, Path(d) / "a")
        res = spinnaker.run(art, x)
    sim_s = time.perf_counter() - t0
    s = res.stats
    T = a.tokens
    c = count(q, x, progress=False)
    sizes = [a.emb, *a.hidden]
    gru_packets = a.emb + sum(a.hidden)
    gru_events = sum((i + h) * 3 * h for i, h in zip(sizes[:-1], sizes[1:]))
    nnz = sum(int(np.count_nonzero(q.nodes[n].kernel)) + int(np.count_nonzero(q.nodes[n].recurrent_kernel))
              for n in q.nodes if q.nodes[n].kind == "EGRU")
    table = load_cost_table()
    e_spin = estimate(c, table.targets["spinnaker2"], s).total_J / T
    e_gpu = estimate(c, table.targets["ann-gpu"]).total_J / T
    e_cpu = estimate(c, table.targets["ann-cpu"]).total_J / T
    activity = {n: float((res.spikes[n] != 0).mean()) for n in res.spikes}
    out = {
        "model": {"kind": "untrained EGRULanguageModel, magnitude-pruned", "emb_dim": a.emb,
                  "hidden_sizes": a.hidden, "thr_mean": a.thr_mean, "weight_sparsity": achieved,
                  "tokens": T, "seed": a.seed, "event_rate_per_layer": activity},
        "per_token": {
            "egru_spinnaker": {k: s[k] / T for k in ("packets_sent", "payload_bytes",
                                                     "dense_input_packets", "synaptic_events",
                                                     "synaptic_rows_fetched", "neuron_updates",
                                                     "router_hops")},
            "dense_gru_same_machine": {"packets_sent": gru_packets,
                                       "payload_bytes": 4 * gru_packets,
                                       "synaptic_events": gru_events},
            "pruned_gru_same_machine": {"packets_sent": gru_packets,
                                        "payload_bytes": 4 * gru_packets,
                                        "synaptic_events": nnz},
            "energy_J": {"spinnaker2_egru": e_spin, "ann_gpu_dense_gru": e_gpu,
                         "ann_cpu_dense_gru": e_cpu},
        },
        "ratios": {"packets_gru_over_egru": gru_packets / (s["packets_sent"] / T),
                   "synaptic_events_gru_over_egru": gru_events / (s["synaptic_events"] / T),
                   "energy_gpu_over_spinnaker2": e_gpu / e_spin,
                   "energy_cpu_over_spinnaker2": e_cpu / e_spin},
        "bit_exact_with_reference": True,
        "simulator_seconds": sim_s,
    }
    ref = spinnaker_reference(q, x)
    for n, v in res.spikes.items():
        if not np.array_equal(v, ref[n]):
            out["bit_exact_with_reference"] = False
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1))
    pt = out["per_token"]
    print(f"EGRU LM (untrained, {100 * np.mean(list(achieved.values())):.0f} % of the weights "
          f"pruned), {T} tokens; event rate per layer {', '.join(f'{v:.3f}' for v in activity.values())}")
    print("| per token | EGRU on the simulator | GRU, same pruned weights | dense GRU |\n"
          "|---|---:|---:|---:|")
    for k in ("packets_sent", "payload_bytes", "synaptic_events"):
        print(f"| {k} | {pt['egru_spinnaker'][k]:.0f} | {pt['pruned_gru_same_machine'][k]:.0f} | "
              f"{pt['dense_gru_same_machine'][k]:.0f} |")
    print(f"| rows fetched | {pt['egru_spinnaker']['synaptic_rows_fetched']:.0f} | - | - |")
    print(f"energy per token: SpiNNaker 2 {e_spin * 1e6:.2f} uJ, GPU {e_gpu * 1e6:.2f} uJ "
          f"({e_gpu / e_spin:.1f}x), CPU {e_cpu * 1e6:.2f} uJ ({e_cpu / e_spin:.1f}x); "
          f"bit-exact: {out['bit_exact_with_reference']}; written {a.out}")


def spinnaker_reference(q: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    from neuro.graph.intsim import simulate_int

    return simulate_int(q, {"emb": x.astype(np.int64)}, record=True)


if __name__ == "__main__":
    main()
