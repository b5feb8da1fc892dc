"""The FPGA backend protocol for graphs with EGRU populations (``egru_onnx``: the step graph).

``supports``/``compile``/``run`` of :mod:`neuro.hardware.fpga` hand a graph holding an EGRU node
here. The artifact holds ``egru_step.onnx`` (``target_info["path"] == "egru"``, with the resource
estimate); ``run`` executes it with onnxruntime step by step. ``Result.spikes`` holds every EGRU
population's graded events ``y`` (integers with the format's EGRU fraction bits, 0 where no
event), bit for bit those of the integer reference executor; an EGRU language model's integer
logits are in ``Result.outputs`` (``neuro.graph.egru_lm_int``). No Verilog for EGRU.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from neuro.graph import lm_nodes as LM
from neuro.graph import nodes as N
from neuro.graph.egru_lm_int import embed, lm_parts, lm_problems, registers
from neuro.graph.formats import get_format
from neuro.hardware.base import (
    ArtifactError,
    Result,
    format_problems,
    load_artifact_graph,
    prepare_graph,
    write_artifact,
)

from . import egru_onnx

TARGET = "fpga"
STEP_FILE = "egru_step.onnx"


def has_egru(graph: Any) -> bool:
    return any(type(n) is N.EGRU for n in graph.nodes.values())


def supports(graph: Any, fmt: str | None, formats: tuple[str, ...]) -> list[str]:
    """Every reason the FPGA EGRU step graph cannot hold ``graph`` in ``fmt``; [] if it can."""
    fmt, problems = format_problems(graph, fmt, formats, "int16")
    if fmt not in formats:
        return problems
    f = get_format(fmt)
    _, readouts = lm_parts(graph)
    problems += lm_problems(graph)
    for n, node in graph.nodes.items():
        if type(node) not in egru_onnx.KINDS or (type(node) is N.Affine and n not in readouts):
            problems.append(f"node {n!r} ({node.kind}): the FPGA EGRU step graph holds Input, EGRU "
                            "and Output nodes, an Embedding of one-hot tokens and a decoder Affine "
                            "reading an EGRU only (EGRU next to LIF populations or other synapse "
                            "nodes is not implemented)")
        elif type(node) is N.EGRU and not (f.frac_bits or f.egru_frac_bits):
            problems.append(f"node {n!r} (EGRU): format {fmt} has no integer EGRU: its "
                            f"{f.state_bits}-bit state has no room for 12 fraction bits (use "
                            "'int16', or 'int8-s32' for 8-bit weights)")
    return problems


def compile(graph: Any, out: str | Path, *, fmt: str | None, calibration_inputs: Any,
            formats: tuple[str, ...]) -> Path:
    """Quantize (if float) and write the artifact with the ONNX step graph."""
    q = prepare_graph(TARGET, formats, graph, fmt or graph.metadata.get("format", {}).get("name")
                      or "int16", calibration_inputs, lambda g, f: supports(g, f, formats))
    model = egru_onnx.build_step_model(q)
    info = {"path": "egru", "resources": egru_onnx.resources(q)}

    def files(d: Path) -> dict[str, str]:
        (d / STEP_FILE).write_bytes(model.SerializeToString())
        return {STEP_FILE: "one time step of the EGRU stack (int64 ONNX; state in, state out)"}

    return write_artifact(out, target=TARGET, graph=q, write_files=files, target_info=info,
                          tools=("onnx", "onnxruntime"))


def run(artifact: str | Path, manifest: dict[str, Any], x: Any, threads: int = 1) -> Result:
    """Run the step graph over every step of integer inputs ``x`` (``[T, N]``/``[T, B, N]``)."""
    import onnxruntime as ort

    from neuro.hardware.spinnaker.egru import int_inputs

    path = Path(artifact)
    if not (path / STEP_FILE).is_file():
        raise ArtifactError(f"{path}: {STEP_FILE} is missing")
    g = load_artifact_graph(path)
    inputs = int_inputs(g, x)
    T, B = next(iter(inputs.values())).shape[:2]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path / STEP_FILE), opts, providers=["CPUExecutionProvider"])
    egrus = [n for n in g.schedule().order if type(g.nodes[n]) is N.EGRU]
    heads = list(registers(g)["readout"])
    for n, node in g.nodes.items():  # the reference's check: one-hot tokens into an Embedding
        if type(node) is LM.Embedding:
            embed(n, np.asarray(node.weight), inputs[g.predecessors(n)[0]])
    H = {n: int(g.nodes[n].recurrent_kernel.shape[0]) for n in egrus}
    feeds = {f"state/{n}/{s}": np.zeros((B, H[n]), np.int64) for n in egrus for s in ("c", "y")}
    names = [o.name for o in sess.get_outputs()]
    ys = {n: np.zeros((T, B, H[n]), np.int64) for n in egrus}
    logits = {n: np.zeros((T, B, *g.infer_shapes()[n]), np.int64) for n in heads}
    start = time.perf_counter()
    for t in range(T):
        for n, v in inputs.items():
            feeds[f"x/{n}"] = v[t]
        res = dict(zip(names, sess.run(None, feeds)))
        for n in heads:
            logits[n][t] = res[f"logits/{n}"]
        for n in egrus:
            ys[n][t] = res[f"y/{n}"]
            for s in ("c", "y"):
                feeds[f"state/{n}/{s}"] = res[f"next/{n}/{s}"]
    seconds = time.perf_counter() - start
    outputs = {o: (ys[p] if p in ys else logits[p] if p in logits else inputs[p])
               for o in g.outputs() for p in g.predecessors(o)}
    stats = {"runtime": f"onnxruntime {ort.__version__} ({STEP_FILE}, CPU, {threads} thread(s))",
             "steps": int(T), "batch": int(B), "seconds": round(seconds, 4),
             "events": {n: int(np.count_nonzero(ys[n])) for n in egrus},
             "neuron_updates": int(T * B * sum(H.values())),
             "resources": manifest.get("target_info", {}).get("resources", {})}
    return Result(ys, outputs, stats)


__all__ = ["STEP_FILE", "compile", "has_egru", "run", "supports"]
