#!/usr/bin/env python
"""Standalone PyNN script written by neuro's ``nest`` target (``neuro export --target nest``).

It needs numpy and PyNN (0.13) with a simulator backend, nothing from neuro::

    python run_pynn.py --input SPIKES.npz --out SPIKES_OUT.npz [--simulator nest] [--threads N]
                       [--nest-module PATH] [--map-only]

``SPIKES.npz``: ``spikes`` ``[T, N]`` or ``[T, B, N]`` (0/1) when the network has one input,
else one array per input node name. ``SPIKES_OUT.npz``: one ``[T, B, N]`` int8 array per spiking
population (keyed by its node name), aligned to neuro's reference steps. LI readouts and graph
outputs are not computed here (NEST has no LI neuron; ``neuro run`` computes them on the host).

The network lives next to this file: ``network.json`` (populations, lags, projections) and
``network.npz`` (per-neuron ``tau_m``/``v_th``/``bias``, and per projection the connection lists
``pre``, ``post``, ``weight`` [mV], ``delay`` [ms]). Every ``B`` samples run as ``B`` independent
copies of the network. The population/projection building has no rank-specific logic, so the
same script runs under ``mpirun`` with an MPI build of NEST.

PyNN 0.13 + NEST work-arounds (all three are needed for exact agreement with neuro):
  1. ``setup(timestep=1.0, min_delay=1.0, spike_precision='on_grid')``: the default
     ('off_grid') picks ``iaf_psc_delta_ps``, which refuses ``tau_refrac=0``;
  2. ``IF_curr_delta`` has no ``variable_map``, so ``initialize(v=0)`` is silently ignored
     (NEST's V_m stays at -70 mV): set ``variable_map = {'v': 'V_m'}``;
  3. ``SpikeSourceArray`` shifts its times by ``-min_delay`` and refuses times <= 1 ms:
     pass NEST time + min_delay (the network's lags keep every time >= 2 ms).
Negative (inhibitory) weights go through ``receptor_type='inhibitory'`` and stay negative.

Populations with subtractive reset (``"model": "neuro_lif_subtract_neuron"`` in network.json) use a
NESTML model (its source is ``neuro_lif_subtract_neuron.nestml`` next to this file) through
``native_cell_type``: pass the built NEST extension module with ``--nest-module PATH`` (the
``.so`` path; neuro builds and caches it: ``python -m neuro.hardware.nest.nestml_models``). It is
installed after ``setup()`` (``setup`` resets the kernel, which unloads modules), and the native
cell type keeps only the model's parameters (work-around 4: PyNN hands every NEST default back to
``Create``, and NEST 3.10 refuses the ``numpy.bool`` it makes of ``ignore_and_spike`` and a float
for the integer state ``refr_counter``); its weights get ``IF_curr_delta``'s ``receptor_scale``
(PyNN multiplies native weights by 1000, nA -> pA; these are mV).
"""
from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MIN_DELAY = 1.0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True)
    ap.add_argument("--out", help="output spikes (.npz); not with --map-only")
    ap.add_argument("--simulator", default="nest", help="PyNN backend module (pyNN.<name>)")
    ap.add_argument("--threads", type=int, default=1, help="NEST local_num_threads")
    ap.add_argument("--nest-module", default=None,
                    help="NEST extension module (.so) with the NESTML models the network needs")
    ap.add_argument("--map-only", action="store_true",
                    help="build and run the network but read no spikes back and write no --out "
                         "(sPyNNaker on a virtual board maps the network and runs nothing)")
    args = ap.parse_args(argv)
    if not args.map_only and not args.out:
        ap.error("--out is required (unless --map-only)")

    net = json.loads((HERE / "network.json").read_text())
    arr = np.load(HERE / "network.npz")
    with np.load(args.input) as f:
        data = {k: f[k] for k in f.files}
    if "spikes" in data and len(net["inputs"]) == 1:
        data = {net["inputs"][0]["name"]: data["spikes"]}
    x = {}
    for i in net["inputs"]:
        a = np.asarray(data[i["name"]])
        a = a[:, None] if a.ndim == len(i["shape"]) + 1 else a
        x[i["name"]] = a.reshape(a.shape[0], a.shape[1], i["size"])
    T, B = next(iter(x.values())).shape[:2]

    sim = importlib.import_module(f"pyNN.{args.simulator}")
    t0 = time.perf_counter()
    extra = {}
    if args.simulator == "nest":
        extra = {"spike_precision": "on_grid", "threads": args.threads}           # work-around 1
        if not getattr(sim.IF_curr_delta, "variable_map", None):
            sim.IF_curr_delta.variable_map = {"v": "V_m"}                           # work-around 2
    sim.setup(timestep=1.0, min_delay=MIN_DELAY, **extra)
    native = sorted({p.get("model", "iaf_psc_delta") for p in net["populations"]} - {"iaf_psc_delta"})
    if native:
        if args.simulator != "nest" or not args.nest_module:
            raise SystemExit(f"run_pynn.py: populations use the NESTML model(s) {native}: run with "
                             "--simulator nest --nest-module PATH/TO/MODULE.so (built by "
                             "`python -m neuro.hardware.nest.nestml_models`)")
        import nest

        nest.Install(str(Path(args.nest_module).resolve()).removesuffix(".so"))
    native_types = {}
    for m in native:  # work-around 4: PyNN passes every NEST default back to Create, and NEST 3.10
        # refuses numpy.bool values (ignore_and_spike): keep only the model's own parameters
        cls = sim.native_cell_type(m)
        cls.default_parameters = {k: v for k, v in cls.default_parameters.items()
                                  if k in ("tau_m", "V_th", "refr_steps")}
        cls.default_initial_values = {"V_m": 0.0}  # refr_counter (integer) stays NEST's 0: PyNN
        # would set it as a float, which NEST refuses for an integer state
        cls.receptor_scale = 1e-3  # weights in mV like IF_curr_delta: undo PyNN's nA -> pA factor
        native_types[m] = cls

    def source_times(times):  # work-around 3: SpikeSourceArray subtracts min_delay
        return [float(t) + MIN_DELAY for t in times]

    cells = {}
    for p in net["populations"]:
        n = p["name"]
        tile = lambda a: np.tile(np.asarray(a, np.float64), B)  # noqa: E731
        model = p.get("model", "iaf_psc_delta")
        if model == "iaf_psc_delta":
            pop = sim.Population(B * p["size"], sim.IF_curr_delta(
                tau_m=tile(arr[f"pop/{n}/tau_m"]), v_thresh=tile(arr[f"pop/{n}/v_th"]), cm=1.0,
                v_rest=0.0, v_reset=0.0, tau_refrac=float(p["t_ref"]), i_offset=0.0), label=n)
            pop.initialize(v=0.0)
        else:  # the NESTML subtractive-reset LIF: NEST's own parameter names
            pop = sim.Population(B * p["size"], native_types[model](
                tau_m=tile(arr[f"pop/{n}/tau_m"]), V_th=tile(arr[f"pop/{n}/v_th"]),
                refr_steps=int(p["t_ref"])), label=n)
            pop.initialize(V_m=0.0)
        pop.record("spikes")
        cells[n] = pop
        bias = np.asarray(arr[f"pop/{n}/bias"], np.float64)
        if p["has_bias"]:
            gen = sim.Population(1, sim.SpikeSourceArray(
                spike_times=source_times(p["lag"] - 1 + t for t in range(T))), label=f"{n}.bias")
            for sign, receptor in ((1, "excitatory"), (-1, "inhibitory")):
                conns = [(0, b * p["size"] + int(j), float(bias[j]), 1.0)
                         for b in range(B) for j in np.flatnonzero(sign * bias > 0)]
                if conns:
                    sim.Projection(gen, pop, sim.FromListConnector(conns),
                                   sim.StaticSynapse(), receptor_type=receptor)
    for i in net["inputs"]:
        n = i["name"]
        trains = [source_times(np.flatnonzero(x[n][:, b, c]) + i["lag"])
                  for b in range(B) for c in range(i["size"])]
        cells[n] = sim.Population(B * i["size"], sim.SpikeSourceArray(spike_times=trains), label=n)
    for pr in net["projections"]:
        k = pr["key"]
        pre, post = arr[f"{k}/pre"], arr[f"{k}/post"]
        w, d = arr[f"{k}/weight"], arr[f"{k}/delay"]
        ns = cells[pr["source"]].size // B
        nt = cells[pr["target"]].size // B
        for sel, receptor in ((w > 0, "excitatory"), (w < 0, "inhibitory")):
            conns = [(b * ns + int(a), b * nt + int(c), float(ww), float(dd))
                     for b in range(B) for a, c, ww, dd in zip(pre[sel], post[sel], w[sel], d[sel])]
            if conns:
                sim.Projection(cells[pr["source"]], cells[pr["target"]], sim.FromListConnector(conns),
                               sim.StaticSynapse(), receptor_type=receptor)
    build = time.perf_counter() - t0
    t1 = time.perf_counter()
    sim.run(float(T + net["max_lag"]) + MIN_DELAY)
    simulate = time.perf_counter() - t1
    if args.map_only:
        sim.end()
        print(json.dumps({"build_seconds": build, "run_seconds": simulate, "steps": T, "batch": B,
                          "map_only": True}))
        return
    out = {}
    for p in net["populations"]:
        s = np.zeros((T, B * p["size"]), np.int8)
        for j, train in enumerate(cells[p["name"]].get_data("spikes").segments[0].spiketrains):
            # recorded times come back one min_delay after the planned NEST times (measured
            # with PyNN 0.13 + NEST 3.10; the same shift as the SpikeSourceArray's)
            steps = (np.rint(np.asarray(train.magnitude, np.float64) - MIN_DELAY).astype(np.int64)
                     - p["lag"])
            steps = steps[(steps >= 0) & (steps < T)]
            s[steps, j] = 1
        out[p["name"]] = s.reshape(T, B, p["size"])
    sim.end()
    np.savez(args.out, **out)  # type: ignore[arg-type]  # numpy stubs: **kwds vs allow_pickle
    print(json.dumps({"build_seconds": build, "simulate_seconds": simulate, "steps": T, "batch": B}))


if __name__ == "__main__":
    main()
