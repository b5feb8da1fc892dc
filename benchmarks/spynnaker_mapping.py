"""The NEST target's exported PyNN script mapped by sPyNNaker on a virtual SpiNN-5 board (mapping
only: nothing runs), beside neuro's SpiNNaker simulator's placement of the same network.

Network: ``nest_scale.py``'s W3 liquid state machine (100 Poisson inputs, 80/20 E/I LIF reservoir,
in-degree 100, delay 1 tick) at 1,000 and 10,000 neurons. Its ``nest/`` folder is written as the
``nest`` target writes it (``nest_scale.write_nest_artifact``, plus ``run_pynn.py``), and
``run_pynn.py --simulator spiNNaker --map-only`` runs unchanged under sPyNNaker 7.4.1
(``pyNN.spiNNaker``): ``setup``, ``IF_curr_delta``, ``SpikeSourceArray``, ``FromListConnector``
lists with delays, ``receptor_type='inhibitory'`` with negative weights. With
``virtual_board = True`` sPyNNaker partitions, places, routes and generates data but loads and
runs nothing; the placements are read (``FecDataView.iterate_placemements``) before ``end()``.
``script_seconds`` is the whole script under sPyNNaker (building the lists, partitioning, placing,
routing, generating the data on the host); neuro's ``mapping_seconds`` is ``map_network`` alone.

neuro's side: ``map_network`` of the same sparse network (``spinnaker_speed.neuro_network``,
s16.15 weights) on its default machine (8 x 8 chips, 16 application cores per chip, 256 neurons per
core). sPyNNaker's board is a SpiNN-5 (48 chips, 17 application cores per chip after the monitor);
it adds system cores (one ``ExtraMonitor`` per chip, a ``PacketGatherer``), listed apart.

sPyNNaker pins its own numpy/PyNN stack, so it lives in an environment of its own
(``$NEURO_SPYNNAKER_PYTHON``; nothing from neuro is imported there)::

    python3.11 -m venv /tmp/spy && /tmp/spy/bin/python -m pip install "spynnaker==1!7.4.1"
    NEURO_SPYNNAKER_PYTHON=/tmp/spy/bin/python PYTHONPATH=. .venv/bin/python benchmarks/spynnaker_mapping.py

(PyPI's version of sPyNNaker 7.4.1 carries an epoch: ``1!7.4.1``). The sPyNNaker process gets a
temporary ``HOME`` holding its ``.spynnaker.cfg`` (virtual board, version 5), so no file is written
to the real home folder; its reports go to a temporary folder.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks" / "results" / "spynnaker_mapping.json"
SIZES = (1_000, 10_000)
SPYNNAKER_CFG = "[Machine]\nvirtual_board = True\nversion = 5\n"


def driver(script: str, inp: str) -> None:
    """In sPyNNaker's environment: run the exported script, map only; print the placements."""
    import runpy

    import pyNN.spiNNaker as sim
    from spinn_front_end_common.data import FecDataView

    captured: list[list[Any]] = []
    end = sim.end

    def end_with_placements(*a: Any, **k: Any) -> Any:
        for p in FecDataView.iterate_placemements():
            captured.append([p.x, p.y, p.p, p.vertex.label, type(p.vertex).__name__,
                             int(p.vertex.vertex_slice.n_atoms)])
        return end(*a, **k)

    sim.end = end_with_placements
    sys.argv = [script, "--input", inp, "--simulator", "spiNNaker", "--map-only"]
    t0 = time.perf_counter()
    runpy.run_path(script, run_name="__main__")
    import spynnaker

    print("PLACEMENTS " + json.dumps({"placements": captured, "seconds": time.perf_counter() - t0,
                                      "spynnaker": spynnaker.__version__}))


def spynnaker_mapping(python: str, art: Path, inp: Path, tmp: Path) -> dict[str, Any]:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    (home / ".spynnaker.cfg").write_text(SPYNNAKER_CFG)
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run([python, __file__, "--driver", str(art / "nest" / "run_pynn.py"), str(inp)],
                          capture_output=True, text=True, cwd=tmp, env=env, timeout=1800)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("PLACEMENTS ")]
    if proc.returncode or not lines:
        raise SystemExit(f"sPyNNaker mapping failed (exit {proc.returncode}):\n"
                         f"{(proc.stderr or proc.stdout)[-3000:]}")
    got = json.loads(lines[-1].removeprefix("PLACEMENTS "))
    app = [p for p in got["placements"] if not p[3].startswith("SYSTEM")]
    system = [p for p in got["placements"] if p[3].startswith("SYSTEM")]
    per_pop: dict[str, int] = collections.Counter(p[3].split("(")[0] for p in app)
    return {"spynnaker": got["spynnaker"], "board": "virtual SpiNN-5 (version 5, 48 chips)",
            "application_cores": len(app), "application_chips": len({(p[0], p[1]) for p in app}),
            "cores_per_population": dict(per_pop),
            "max_atoms_per_core": max((p[5] for p in app), default=0),
            "system_cores": len(system), "chips_with_any_core": len({(p[0], p[1]) for p in got["placements"]}),
            "script_seconds": got["seconds"], "wall_seconds": wall}


def neuro_mapping(d: dict[str, Any]) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).parent))
    from spinnaker_speed import neuro_network

    from neuro.hardware.spinnaker import map_network

    t0 = time.perf_counter()
    m = map_network(neuro_network(d))
    seconds = time.perf_counter() - t0
    cpc = m.machine.cores_per_chip
    per_pop = collections.Counter(v.population for v in m.vertices)
    return {"machine": m.machine.describe(), "application_cores": len(m.vertices),
            "application_chips": len({v.core // cpc for v in m.vertices}),
            "cores_per_population": dict(per_pop),
            "max_atoms_per_core": max(v.n for v in m.vertices),
            "delay_extension_cores": sum(v.kind == "delay_extension" for v in m.vertices),
            "mapping_seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--driver", nargs=2, metavar=("SCRIPT", "INPUT"), help=argparse.SUPPRESS)
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    if args.driver:
        driver(*args.driver)
        return 0
    import numpy as np
    from _common import cpu_model, write_results
    from nest_scale import make_data, write_nest_artifact

    python = os.environ.get("NEURO_SPYNNAKER_PYTHON")
    if not python:
        raise SystemExit("set NEURO_SPYNNAKER_PYTHON to a Python with spynnaker==1!7.4.1 (module docstring)")
    rows = []
    for n in args.sizes:
        d = make_data(n)
        with tempfile.TemporaryDirectory(prefix="neuro-spynnaker-") as t:
            tmp = Path(t)
            write_nest_artifact(d, tmp / "art")
            shutil.copyfile(REPO / "hardware" / "nest" / "pynn_script.py", tmp / "art" / "nest" / "run_pynn.py")
            np.savez(tmp / "in.npz", spikes=d["x"])
            spy = spynnaker_mapping(python, tmp / "art", tmp / "in.npz", tmp)
        ours = neuro_mapping(d)
        row = {"network": f"W3 LSM, {n} LIF + {d['n_in']} inputs", "neurons": n,
               "synapses": int(d["pre"].size + d["ipre"].size), "spynnaker": spy, "neuro_spinnaker": ours}
        rows.append(row)
        print(f"{n:>6} neurons, {row['synapses']:>9} synapses | sPyNNaker: {spy['application_cores']} "
              f"application cores ({spy['cores_per_population']}, <= {spy['max_atoms_per_core']} "
              f"atoms/core) on {spy['application_chips']} chips, + {spy['system_cores']} system cores, "
              f"script (build + map + data generation) {spy['script_seconds']:.1f} s | neuro SpiNNaker: {ours['application_cores']} "
              f"cores ({ours['cores_per_population']}) on {ours['application_chips']} chips, mapped in "
              f"{ours['mapping_seconds']:.2f} s", flush=True)
    write_results(args.out, {"benchmark": "spynnaker_mapping", "cpu": cpu_model(), "rows": rows,
                             "command": "NEURO_SPYNNAKER_PYTHON=... PYTHONPATH=. python "
                                        "benchmarks/spynnaker_mapping.py"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
