"""The FPGA backend protocol for SpikeGPT graphs (``spikegpt_onnx``: the one-token step graph).

``supports``/``compile``/``run`` of :mod:`neuro.hardware.fpga` hand a graph holding language-model
nodes (``neuro.graph.lm_nodes``) here. ``compile`` quantizes a float graph with
``neuro.graph.spikegpt_int.quantize_spikegpt`` (the calibration tokens choose the activation
fraction bits) and writes ``spikegpt_step.onnx`` (``target_info["path"] == "spikegpt"``, with the
resource estimate per block); ``run`` executes it token by token with onnxruntime.
``Result.spikes`` holds every LIF population's spikes, ``Result.outputs`` the integer logits
(``frac_bits`` fraction bits), bit for bit those of the integer reference executor. No Verilog.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from neuro.graph import nodes as N
from neuro.graph import spikegpt_int as SI
from neuro.hardware.base import (
    ArtifactError,
    Result,
    UnsupportedGraph,
    as_int_spikes,
    format_problems,
    load_artifact_graph,
    write_artifact,
)

from . import spikegpt_onnx

TARGET = "fpga"
STEP_FILE = "spikegpt_step.onnx"


def has_spikegpt(graph: Any) -> bool:
    return SI.is_spikegpt_graph(graph)


def supports(graph: Any, fmt: str | None, formats: tuple[str, ...]) -> list[str]:
    """Every reason the FPGA SpikeGPT step graph cannot hold ``graph`` in ``fmt``; [] if it can."""
    fmt, problems = format_problems(graph, fmt, formats, "int8")
    if fmt not in formats:
        return problems
    return problems + SI.problems(graph, fmt)


def compile(graph: Any, out: str | Path, *, fmt: str | None, calibration_inputs: Any,
            formats: tuple[str, ...], force: bool = False) -> Path:
    """Quantize (if float) and write the artifact with the ONNX step graph."""
    problems = supports(graph, fmt, formats)
    if problems:
        raise UnsupportedGraph(TARGET, problems)
    q = graph
    if "format" not in graph.metadata:
        calib = None
        if calibration_inputs is not None:
            calib = {k: v.astype(np.float32) for k, v in as_int_spikes(graph, calibration_inputs).items()}
        try:
            q = SI.quantize_spikegpt(graph, fmt or "int8", calib)
        except ValueError as exc:
            raise UnsupportedGraph(TARGET, [str(exc)]) from None
    model = spikegpt_onnx.build_step_model(q)
    est = spikegpt_onnx.resources(q)
    info = {"path": "spikegpt", "frac_bits": est["frac_bits"], "resources": est["total"],
            "resources_per_block": est["blocks"]}

    def files(d: Path) -> dict[str, str]:
        (d / STEP_FILE).write_bytes(model.SerializeToString())
        (d / "resources.json").write_text(json.dumps(est, indent=1))
        return {STEP_FILE: "one token of the SpikeGPT graph (int64 ONNX; state in, state out)",
                "resources.json": "resource estimate per block (model in the file)"}

    return write_artifact(out, target=TARGET, graph=q, write_files=files, target_info=info,
                          tools=("onnx", "onnxruntime"), force=force)


def run(artifact: str | Path, manifest: dict[str, Any], x: Any, threads: int = 1) -> Result:
    """Run the step graph over every token of one-hot inputs ``x`` (``[T, V]``/``[T, B, V]``)."""
    import onnxruntime as ort

    path = Path(artifact)
    if not (path / STEP_FILE).is_file():
        raise ArtifactError(f"{path}: {STEP_FILE} is missing")
    g = load_artifact_graph(path)
    inputs = as_int_spikes(g, x, max_count=1)
    for k, v in inputs.items():
        SI.check_one_hot(k, v)
    T, B = next(iter(inputs.values())).shape[:2]
    R = SI.Regs(g)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path / STEP_FILE), opts, providers=["CPUExecutionProvider"])
    feeds = {f"state/{k}": v for k, v in R.init_state(B).items()}
    names = [o.name for o in sess.get_outputs()]
    lifs = [n for n in R.order if type(g.nodes[n]) is N.LIF]
    spikes = {n: np.zeros((T, B, *R.shapes[n]), np.int64) for n in lifs}
    outputs = {n: np.zeros((T, B, *R.shapes[n]), np.int64) for n in g.outputs()}
    start = time.perf_counter()
    for t in range(T):
        for n, v in inputs.items():
            feeds[f"x/{n}"] = v[t]
        res = dict(zip(names, sess.run(None, feeds)))
        for n in lifs:
            spikes[n][t] = res[f"y/{n}"]
        for n in outputs:
            outputs[n][t] = res[f"output/{n}"]
        for k, v in res.items():
            if k.startswith("next/"):
                feeds["state/" + k[5:]] = v
    seconds = time.perf_counter() - start
    stats = {"runtime": f"onnxruntime {ort.__version__} ({STEP_FILE}, CPU, {threads} thread(s))",
             "steps": int(T), "batch": int(B), "seconds": round(seconds, 4),
             "spikes": {n: int(spikes[n].sum()) for n in lifs},
             "frac_bits": R.F,
             "resources": manifest.get("target_info", {}).get("resources", {})}
    return Result(spikes, outputs, stats)


__all__ = ["STEP_FILE", "compile", "has_spikegpt", "run", "supports"]
