"""NEST worker: runs a NEST artifact's network (``nest/network.json`` + ``nest/network.npz``).

Run as a script, by file path, under the interpreter that has NEST (``NEURO_NEST_PYTHON``)::

    python worker.py ARTIFACT_DIR IN.npz OUT.npz     # run
    python worker.py --probe                          # print {"nest": version, ...} as JSON

It imports nothing from neuro (neither torch nor the package ``__init__``), so NEST may live in an
environment of its own. ``IN.npz``: ``in/<input>`` spikes ``[B, T, N]`` (0/1) and ``options`` (JSON:
``steps`` T, ``threads``). The B samples run as B independent copies of the network in one NEST
kernel (no connection crosses copies), so one ``Simulate`` call runs the batch.

Network (``hardware/nest/mapping.py``): one node collection per population (``B * size``
neurons; ``iaf_psc_delta``, or the NESTML model ``neuro_lif_subtract_neuron`` from the extension
modules listed in ``options["modules"]``, installed by path after the kernel reset), one
``spike_generator`` per input channel and sample (reference step ``t`` fires at NEST time
``t + lag``), one bias ``spike_generator`` per population with a bias (fires at
``lag - 1 + t``, delay 1 ms, weight = bias), connections from the lists with delays in ms, one
``spike_recorder`` per population. ``OUT.npz``: ``n/<pop>`` (index ``b * size + i``) and
``t/<pop>`` (reference step) of every spike, and ``stats`` (JSON: NEST version, threads, build and
simulate seconds, peak resident memory). Failures print ``nest worker: <error>`` on stderr and exit 1; a missing NEST
exits 3.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback


def run(artifact: str, in_path: str, out_path: str) -> None:
    import numpy as np

    try:
        import nest
    except ImportError as exc:
        print(f"nest worker: cannot import nest ({exc})", file=sys.stderr)
        sys.exit(3)
    net = json.loads(open(os.path.join(artifact, "nest", "network.json")).read())
    arr = np.load(os.path.join(artifact, "nest", "network.npz"))
    inp = np.load(in_path)
    opts = json.loads(str(inp["options"]))
    T, threads = int(opts["steps"]), int(opts.get("threads", 1))
    B = int(opts["batch"])

    t0 = time.perf_counter()
    nest.set_verbosity("M_ERROR")
    nest.ResetKernel()
    nest.SetKernelStatus({"local_num_threads": threads, "resolution": 1.0})
    for module in opts.get("modules", []):  # NESTML extension modules (after every ResetKernel)
        nest.Install(module)
    ids = {}
    recorders = {}
    for p in net["populations"]:
        n = p["name"]
        size = p["size"]
        model = p.get("model", "iaf_psc_delta")
        pop = nest.Create(model, B * size)
        tile = lambda a: np.tile(np.asarray(a, np.float64), B)  # noqa: E731
        common = {"tau_m": tile(arr[f"pop/{n}/tau_m"]).tolist(), "V_th": tile(arr[f"pop/{n}/v_th"]).tolist(),
                  "V_m": 0.0}
        if model == "iaf_psc_delta":
            pop.set(common | {"E_L": 0.0, "V_reset": 0.0, "I_e": 0.0, "C_m": 1.0,
                              "t_ref": float(p["t_ref"])})
        else:  # the NESTML subtractive-reset LIF (hardware/nest/nestml_models.py)
            pop.set(common | {"refr_steps": int(p["t_ref"]), "refr_counter": 0})
        ids[n] = np.asarray(pop.tolist(), np.int64)
        rec = nest.Create("spike_recorder")
        nest.Connect(pop, rec)
        recorders[n] = (rec, int(ids[n][0]), p["lag"])
        bias = np.asarray(arr[f"pop/{n}/bias"], np.float64)
        if p["has_bias"] and T > 0:
            gen = nest.Create("spike_generator", params={
                "spike_times": [float(p["lag"] - 1 + t) for t in range(T)]})
            nz = np.flatnonzero(bias)
            post = (np.arange(B)[:, None] * size + nz[None, :]).reshape(-1)
            nest.Connect(np.full(len(post), gen.tolist()[0], np.int64), ids[n][post],
                         "one_to_one", {"weight": np.tile(bias[nz], B), "delay": np.ones(len(post))})
    for i in net["inputs"]:
        n, size, lag = i["name"], i["size"], i["lag"]
        x = np.asarray(inp[f"in/{n}"])  # [B, T, N]
        gens = nest.Create("spike_generator", B * size)
        params = []
        for b in range(B):
            for c in range(size):
                params.append({"spike_times": (np.flatnonzero(x[b, :, c]) + float(lag)).tolist()})
        gens.set(params)
        ids[n] = np.asarray(gens.tolist(), np.int64)
    for pr in net["projections"]:
        k = pr["key"]
        if not pr["connections"]:
            continue
        pre, post = arr[f"{k}/pre"], arr[f"{k}/post"]
        ns = len(ids[pr["source"]]) // B
        nt = len(ids[pr["target"]]) // B
        off = np.arange(B)[:, None]
        src = ids[pr["source"]][(off * ns + pre[None, :]).reshape(-1)]
        tgt = ids[pr["target"]][(off * nt + post[None, :]).reshape(-1)]
        nest.Connect(src, tgt, "one_to_one",
                     {"synapse_model": "static_synapse",
                      "weight": np.tile(np.asarray(arr[f"{k}/weight"], np.float64), B),
                      "delay": np.tile(np.asarray(arr[f"{k}/delay"], np.float64), B)})
    build = time.perf_counter() - t0
    t1 = time.perf_counter()
    nest.Simulate(float(T + net["max_lag"]))
    sim = time.perf_counter() - t1
    out = {}
    for n, (rec, first, lag) in recorders.items():
        ev = rec.get("events")
        step = np.rint(np.asarray(ev["times"], np.float64)).astype(np.int64) - lag
        idx = np.asarray(ev["senders"], np.int64) - first
        keep = (step >= 0) & (step < T)
        out[f"n/{n}"], out[f"t/{n}"] = idx[keep], step[keep]
    stats = {"nest": str(nest.__version__) if hasattr(nest, "__version__") else "?",
             "threads": int(nest.GetKernelStatus("local_num_threads")),
             "build_seconds": build, "simulate_seconds": sim,
             "nest_steps": T + net["max_lag"],
             "connections": int(nest.GetKernelStatus("num_connections")),
             "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    tmp = out_path + ".tmp.npz"
    np.savez(tmp, stats=np.array(json.dumps(stats)), **out)
    os.replace(tmp, out_path)


def probe() -> None:
    try:
        import nest
    except ImportError as exc:
        print(f"nest worker: cannot import nest ({exc})", file=sys.stderr)
        sys.exit(3)
    import numpy

    print(json.dumps({"nest": getattr(nest, "__version__", "?"), "numpy": numpy.__version__,
                      "python": sys.version.split()[0],
                      "have_mpi": bool(nest.build_info.get("have_mpi"))}))


def main(argv: list[str]) -> None:
    try:
        if argv == ["--probe"]:
            probe()
        elif len(argv) == 3:
            run(*argv)
        else:
            print("nest worker: usage: worker.py ARTIFACT IN.npz OUT.npz | --probe", file=sys.stderr)
            sys.exit(2)
    except SystemExit:
        raise
    except BaseException as exc:  # one line for the caller, then the traceback
        print(f"nest worker: {type(exc).__name__}: {exc}", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
