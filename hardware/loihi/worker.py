"""Lava worker: runs a Loihi artifact's process graph in Lava's CPU simulator.

Run as a script, by file path, under the interpreter that has Lava (``NEURO_LAVA_PYTHON``)::

    python worker.py ARTIFACT_DIR IN.npz OUT.npz     # run
    python worker.py --probe                          # print {"lava": version, ...} as JSON

This file is the only place that imports Lava, and it imports nothing from neuro (neither torch
nor the package ``__init__``): it is executed as a standalone script, so it runs in a separate
environment that pins numpy<2 (lava-nc 0.10.0) while neuro itself runs on numpy 2.

Inputs: ``ARTIFACT_DIR/lava/network.json`` + ``lava/arrays.npz`` (the process graph written by
``neuro.hardware.loihi.mapping``) and ``IN.npz``: ``in/<k>`` spikes ``[B, T_run, N]`` (0/1 ints) per
input of the network, and ``options`` (a JSON string: ``mode`` "fixed_pt"|"floating_pt",
``steps`` T_run, ``probe_v`` list of neurons whose membrane ``v`` is recorded).

Process graph: one ``io.source.RingBuffer`` per input holding every sample back to back
(``[N, B * T_run]``), one ``Dense`` / ``DelayDense`` / ``Sparse`` per synapse, one ``LIF`` per
neuron population, one ``io.sink.RingBuffer`` per spiking population (its ``s_out``) and one
``Monitor`` per recorded ``v`` (LI readouts, and the LIFs asked for; a Lava Monitor probes one
variable). Lava runs only the processes connected to the one that is run, so unconnected parts of
the network are joined by all-zero Dense synapses (they add exactly 0). The samples of a batch run
one after another: ``T_run`` steps each, with every state variable (LIF ``u``, ``v``; the
synapses' ``a_buff``) set back to zero in between, so each sample starts from the reset state
exactly as in the reference executor. A population with lag ``L`` gets its bias from step ``L`` of
each sample on (when its first input arrives), as the reference adds it from the first step.

Output ``OUT.npz`` (written to a temporary name, then renamed): ``s/<neuron>`` and ``v/<neuron>``
``[B, T_run, n]`` integers (fixed_pt) or floats (floating_pt), and ``stats`` (JSON string).
Failures print one line ``lava worker: <error>`` on stderr (plus the traceback) and exit 1;
a missing Lava exits 3.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback


def _import_lava():
    """Import Lava (with the Python 3.11 work-around) and return the names the worker uses.

    Python 3.11 rejects lava-nc 0.10.0's ``lava.magma.compiler.var_model``: its dataclasses use
    ``ByteEncoder()`` instances as field defaults, and 3.11 refuses unhashable defaults
    (``ValueError: mutable default ... ByteEncoder``). While that one module is imported,
    ``dataclasses.dataclass`` is wrapped so that the class named ``ByteEncoder`` defined in a
    ``lava.`` module gets ``unsafe_hash=True`` (its instances become hashable and are accepted as
    defaults); every other class is built unchanged, and the original decorator is restored
    afterwards. Python 3.10 needs nothing.
    """
    import dataclasses

    original = dataclasses.dataclass
    if sys.version_info >= (3, 11):
        def patched(cls=None, /, **kwargs):
            def wrap(c):
                if c.__name__ == "ByteEncoder" and c.__module__.startswith("lava."):
                    return original(c, **{**kwargs, "unsafe_hash": True})
                return original(c, **kwargs)
            return wrap if cls is None else wrap(cls)

        dataclasses.dataclass = patched
    try:
        import lava.magma.compiler.var_model  # noqa: F401  (the module that needs the shim)
    finally:
        dataclasses.dataclass = original
    from importlib import metadata

    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.sink import RingBuffer as SinkRingBuffer
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor
    from lava.proc.sparse.process import Sparse

    return {"RunSteps": RunSteps, "Loihi2SimCfg": Loihi2SimCfg, "Dense": Dense,
            "DelayDense": DelayDense, "Sparse": Sparse, "RingBuffer": RingBuffer,
            "SinkRingBuffer": SinkRingBuffer, "LIF": LIF,
            "Monitor": Monitor, "version": metadata.version("lava-nc")}


class _Net:
    """The Lava processes of one network description, in one execution mode."""

    def __init__(self, lava: dict, net: dict, arrays, data: dict, mode: str, steps: int,
                 batch: int, probe_v: list) -> None:
        import numpy as np

        fixed = mode == "fixed_pt"
        key = "" if fixed else "float/"
        dtype = np.int32 if fixed else float
        self.np, self.fixed, self.steps, self.batch = np, fixed, steps, batch
        total = steps * batch
        self.sources = {}
        for inp in net["inputs"]:  # [B, T_run, N] -> [N, B * T_run]: sample b at b*T_run + t
            x = np.asarray(data[inp["name"]], dtype)
            self.sources[inp["name"]] = lava["RingBuffer"](
                data=np.ascontiguousarray(x.reshape(total, -1).T))
        self.neurons = {}
        self.biases: dict[int, list] = {}  # lag -> [(LIF, bias_mant)] switched on at that step of every sample
        for n in net["neurons"]:
            p = n["fixed"] if fixed else n["float"]
            kw = dict(shape=(n["size"],), du=p["du"], dv=p["dv"], vth=p["vth"], name=n["id"])
            if fixed:
                mant = arrays[f"neuron/{n['name']}/bias_mant"].astype(np.int32)
                kw["bias_exp"] = arrays[f"neuron/{n['name']}/bias_exp"].astype(np.int32)
            else:
                mant = arrays[f"float/neuron/{n['name']}/bias"].astype(float)
            lif = lava["LIF"](bias_mant=mant if not n["lag"] else np.zeros_like(mant), **kw)
            self.neurons[n["name"]] = lif
            if n["lag"] and mant.any():
                self.biases.setdefault(int(n["lag"]), []).append((lif, mant))
        self.synapses: list[tuple] = []  # (Lava process, a_buff shape); no typing import here (standalone worker)
        buff: tuple[int, ...]
        for s in net["synapses"]:
            w = arrays[f"{key}syn/{s['name']}/weight"]
            w = w.astype(np.int32) if fixed else w.astype(float)
            common = dict(weights=w, name=s["id"])
            if fixed:
                common["weight_exp"] = int(s["weight_exp"])
                common["num_weight_bits"] = 8
            if s["kind"] == "delay_dense":
                delays = arrays[f"syn/{s['name']}/delay"].astype(int)
                proc = lava["DelayDense"](delays=delays, max_delay=int(delays.max()), **common)
                buff = (w.shape[0], int(delays.max()) + 1)
            elif s["kind"] == "sparse":
                proc = lava["Sparse"](**common)
                buff = (w.shape[0],)
            else:
                proc = lava["Dense"](**common)
                buff = (w.shape[0],)
            src = (self.sources[s["src"]].s_out if s["src_is_input"]
                   else self.neurons[s["src"]].s_out)
            src.connect(proc.s_in)
            proc.a_out.connect(self.neurons[s["dst"]].a_in)
            self.synapses.append((proc, buff))
        self.bridges = self._bridge(lava, net)
        self.sinks, self.monitors = {}, {}  # a Lava Monitor probes one variable only
        for n in net["neurons"]:
            lif = self.neurons[n["name"]]
            if n["spiking"]:
                self.sinks[n["name"]] = lava["SinkRingBuffer"](shape=(n["size"],), buffer=total)
                lif.s_out.connect(self.sinks[n["name"]].a_in)
            if not n["spiking"] or n["name"] in probe_v:
                self.monitors[n["name"]] = lava["Monitor"]()
                self.monitors[n["name"]].probe(lif.v, total)
        self.run_cfg = lava["Loihi2SimCfg"](select_tag=mode)
        self.RunSteps = lava["RunSteps"]
        self.anchor = next(iter(self.neurons.values()))
        self.dtype = dtype

    def _bridge(self, lava: dict, net: dict) -> list:
        """Lava compiles and runs the processes connected to the one that is run: join
        unconnected parts of the network with all-zero Dense synapses (they add exactly 0)."""
        np = self.np
        parent = {k: k for k in [*self.sources, *self.neurons]}

        def root(k):
            while parent[k] != k:
                k = parent[k]
            return k

        for s in net["synapses"]:
            parent[root(s["src"])] = root(s["dst"])
        groups: dict = {}
        for k in self.neurons:
            groups.setdefault(root(k), k)
        first, *others = groups.values()
        bridges = []
        for k in others:
            w = np.zeros((self.neurons[k].a_in.shape[0], self.neurons[first].s_out.shape[0]),
                         np.int32 if self.fixed else float)
            proc = lava["Dense"](weights=w, name=f"bridge_{k}")
            self.neurons[first].s_out.connect(proc.s_in)
            proc.a_out.connect(self.neurons[k].a_in)
            bridges.append(proc)
            self.synapses.append((proc, (w.shape[0],)))
        return bridges

    def reset(self) -> None:
        """Every state variable back to zero, delayed biases off (between samples)."""
        np = self.np
        for group in self.biases.values():
            for lif, mant in group:
                lif.bias_mant.set(np.zeros_like(mant))
        for lif in self.neurons.values():
            shape = lif.u.shape
            lif.u.set(np.zeros(shape, self.dtype))
            lif.v.set(np.zeros(shape, self.dtype))
        for proc, buff in self.synapses:
            proc.a_buff.set(np.zeros(buff, self.dtype))

    def _steps(self, n: int) -> None:
        if n > 0:
            self.anchor.run(condition=self.RunSteps(num_steps=n), run_cfg=self.run_cfg)

    def run(self) -> dict:
        """Every sample, ``steps`` Lava steps each, state reset in between. A population with
        lag ``L`` (its inputs arrive ``L`` steps late, see ``mapping``) gets its bias from step
        ``L`` on: the reference executor adds it from the sample's first step, so the bias
        starts with the population's first input."""
        timings = []
        ok = False  # after a failure the runtime may be wedged: no stop(), the worker exits hard
        try:
            t0 = time.perf_counter()
            self.anchor.create_runtime(run_cfg=self.run_cfg)  # compile, start the processes
            self.compile_seconds = time.perf_counter() - t0
            for b in range(self.batch):
                if b:
                    self.reset()
                t0 = time.perf_counter()
                done = 0
                for lag in sorted(self.biases):  # a population's bias starts at its lag
                    if lag > done:
                        self._steps(lag - done)
                        done = lag
                    for lif, mant in self.biases[lag]:
                        lif.bias_mant.set(mant)
                self._steps(self.steps - done)
                timings.append(time.perf_counter() - t0)
            spikes = {k: sink.data.get() for k, sink in self.sinks.items()}  # [n, B * T_run]
            volts = {k: next(iter(m.get_data().values()))["v"]  # [B * T_run, n]
                     for k, m in self.monitors.items()}
            ok = True
        finally:
            if ok:
                self.anchor.stop()
        return {"s": {k: v.T for k, v in spikes.items()}, "v": volts, "run_seconds": timings}


def run(artifact: str, in_path: str, out_path: str) -> None:
    import numpy as np

    lava = _import_lava()
    t_start = time.perf_counter()
    with open(os.path.join(artifact, "lava", "network.json"), encoding="utf-8") as f:
        net = json.load(f)
    with np.load(os.path.join(artifact, "lava", "arrays.npz"), allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    with np.load(in_path, allow_pickle=False) as f:
        options = json.loads(str(f["options"]))
        data = {k[3:]: f[k] for k in f.files if k.startswith("in/")}
    mode, steps = options["mode"], int(options["steps"])
    if mode not in ("fixed_pt", "floating_pt"):
        raise ValueError(f"mode must be fixed_pt or floating_pt, got {mode!r}")
    batch = int(next(iter(data.values())).shape[0])
    net_obj = _Net(lava, net, arrays, data, mode, steps, batch, list(options.get("probe_v", [])))
    t_built = time.perf_counter()
    res = net_obj.run()
    out = {}
    for n in net["neurons"]:
        for prefix in ("s", "v"):
            if n["name"] in res[prefix]:
                arr = np.asarray(res[prefix][n["name"]]).reshape(batch, steps, n["size"])
                out[f"{prefix}/{n['name']}"] = (np.rint(arr).astype(np.int64) if net_obj.fixed
                                               else arr.astype(np.float64))
    stats = {"lava": lava["version"], "mode": mode, "processes": len(net_obj.sources)
             + len(net_obj.neurons) + len(net_obj.synapses) + len(net_obj.sinks)
             + len(net_obj.monitors), "zero_bridges": len(net_obj.bridges),
             "steps_per_sample": steps, "samples": batch,
             "build_seconds": t_built - t_start, "compile_seconds": net_obj.compile_seconds,
             "run_seconds": res["run_seconds"],
             "python": sys.version.split()[0], "numpy": np.__version__}
    out["stats"] = np.array(json.dumps(stats))
    tmp = f"{out_path}.tmp{os.getpid()}.npz"
    try:
        np.savez(tmp, **out)  # type: ignore[arg-type]  # numpy stubs: **kwds vs allow_pickle
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv: list) -> int:
    if argv[:1] == ["--probe"]:
        try:
            lava = _import_lava()
        except ImportError as exc:
            print(f"lava worker: Lava is not importable here ({exc})", file=sys.stderr)
            return 3
        import numpy as np

        print(json.dumps({"lava": lava["version"], "numpy": np.__version__,
                          "python": sys.version.split()[0]}))
        return 0
    if len(argv) != 3:
        print("usage: worker.py ARTIFACT_DIR IN.npz OUT.npz | --probe", file=sys.stderr)
        return 2
    try:
        run(*argv)
        return 0
    except ImportError as exc:
        print(f"lava worker: Lava is not importable with {sys.executable} ({exc})", file=sys.stderr)
        code = 3
    except BaseException as exc:  # one line first (the backend shows it), then the traceback
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"lava worker: {type(exc).__name__}: {msg}", file=sys.stderr)
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # Lava's runtime processes may still be alive: do not wait for them


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
