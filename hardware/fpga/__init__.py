"""Target ``fpga``: integer graphs for FPGAs (issue 8).

An artifact (``compile``) holds, besides ``manifest.json`` and the quantized IR under ``graph/``:

* ``graph.json`` + ``weights.npz``: the self-describing integer graph (:mod:`.intgraph`): layers
  in the exact per-step update order, integer weights/delays/thresholds/leaks/biases, bit widths,
  rounding and overflow rules;
* ``step.onnx``: one time step in standard integer ONNX (:mod:`.onnx_step`), state in, state out;
  ``run`` executes it with onnxruntime for ``T`` steps;
* ``weights.qonnx.onnx``: the weights as QONNX ``Quant`` nodes for FINN/hls4ml-style tools;
* ``resources.json``: the resource estimate per layer (:mod:`.resources`), also in the
  manifest's ``target_info``;
* ``verilog/neuro_net.v``: synthesizable Verilog of the fully parallel design (:mod:`.verilog`;
  written by default for graphs up to ``VERILOG_AUTO_SYNAPSES`` synapses); ``run(...,
  engine="verilog")`` simulates it with Icarus Verilog.

Formats: ``int8`` (default), ``int16``, ``int8-m12``, ``int16-m12``, ``int8-s32``
(``neuro.graph.formats.fpga``: ``-m12`` is the 12-bit mantissa leak, otherwise the shift leak
``v - (v >> k)``; ``-s32`` a 32-bit state with 8-bit weights). Timing: the
step graph has no latency, so output step ``t`` belongs to input step ``t``, as in the reference
executor (see :mod:`.intgraph`).

A graph with EGRU populations (``int16``: 16-bit weights, or ``int8-s32``: 8-bit weights; 12
fraction bits in the 32-bit state, gate tables) gets ``egru_step.onnx`` instead (:mod:`.egru`,
:mod:`.egru_onnx`): the step graph of the EGRU stack, run by onnxruntime bit-exact with the
integer reference executor; no Verilog, and no form in the 16-bit-state formats.

A SpikeGPT graph (language-model nodes) gets ``spikegpt_step.onnx`` (:mod:`.spikegpt`,
:mod:`.spikegpt_onnx`; ``int8`` or ``int16`` weights with per-channel multipliers, 24-bit
activations, ``neuro.graph.spikegpt_int``): one token, run by onnxruntime bit-exact with the
integer reference executor; no Verilog.
"""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neuro.graph import nodes as N
from neuro.graph.formats import NumberFormat, get_format
from neuro.graph.populations import neuron_problems
from neuro.hardware.base import (
    ArtifactError,
    Result,
    UnsupportedGraph,
    as_int_spikes,
    load_artifact_graph,
    prepare_graph,
    quantize_problems,
    read_manifest,
    write_artifact,
)

from . import egru, intgraph, onnx_step, resources, spikegpt

if TYPE_CHECKING:
    from neuro.graph import Graph

name = "fpga"
formats: tuple[str, ...] = ("int8", "int16", "int8-m12", "int16-m12", "int8-s32")
#: runs the quantized graph, bit-exact with the integer reference executor
runs = "quantized"
agreement = 1.0

VERILOG_AUTO_SYNAPSES = 20_000  # compile() writes the Verilog by default up to this many synapses

#: a float graph may also hold ChannelAffine nodes (quantize folds them into the synapse before)
#: and AvgPool2d (quantize folds 1/(kh kw) into the synapse after it, keeping a SumPool2d)
FLOAT_KINDS: frozenset[type[N.Node]] = intgraph.KINDS | {N.ChannelAffine, N.AvgPool2d}


def supports(graph: Graph, fmt: str | None = None, *, saturate_weights: bool = False) -> list[str]:
    """Every reason ``graph`` cannot be compiled for ``fmt`` (``[]``: it can).

    A float graph is checked for node kinds and neuron options without an integer form. A graph
    already quantized is checked field by field against the format's bit widths: a weight wider
    than ``weight_bits`` is a problem naming the layer and the bits needed unless
    ``saturate_weights`` (then ``compile`` clips it to the format's range)."""
    if egru.has_egru(graph):  # the EGRU step graph (hardware/fpga/egru.py)
        return egru.supports(graph, fmt, formats)
    if spikegpt.has_spikegpt(graph):  # the SpikeGPT step graph (hardware/fpga/spikegpt.py)
        return spikegpt.supports(graph, fmt, formats)
    problems: list[str] = []
    meta_fmt = graph.metadata.get("format")
    current = meta_fmt.get("name") if meta_fmt else None
    fmt = fmt or current or formats[0]
    if fmt not in formats:
        return [f"number format {fmt!r} is not one of {list(formats)}"]
    f: NumberFormat = get_format(fmt)
    if meta_fmt:
        g_fmt = NumberFormat.from_dict(meta_fmt)
        if g_fmt.family != "fixed" or g_fmt.frac_bits or g_fmt.decay not in ("shift", "mantissa"):
            return [f"the graph's number format {current!r} is not an FPGA integer format"]
        if current != fmt:
            problems.append(f"the graph is quantized to {current!r}, not {fmt!r} (quantize the "
                            "float model to the target format)")
        else:
            f = g_fmt  # the graph's own format (it may be a configured fpga(...) variant)
    node: Any  # fields read by name (a neuron's q)
    for n, node in graph.nodes.items():
        allowed = FLOAT_KINDS if not meta_fmt else intgraph.KINDS
        if type(node) not in allowed:
            problems.append(f"node {n!r} ({node.kind}) has no integer form on target fpga "
                            f"(supported: {', '.join(sorted({c.kind for c in allowed}))})")
            continue
        if node.role == "neuron":
            problems.extend(neuron_problems(n, node, f, graph=graph))
            if meta_fmt and node.q is None:
                problems.append(f"node {n!r} ({node.kind}): no integer parameters (field 'q')")
        if not meta_fmt:
            continue
        for field, limit, what in (("weight", f.weight_bits, "weight_bits"),
                                   ("bias", f.state_bits, "state_bits")):
            v = getattr(node, field, None)
            if v is None or node.role != "synapse":
                continue
            v = np.asarray(v)
            if not np.issubdtype(v.dtype, np.integer):
                problems.append(f"node {n!r} ({node.kind}): field {field!r} is not integer in a "
                                "quantized graph")
                continue
            need = intgraph.signed_bits(v)
            if need > limit and not (field == "weight" and saturate_weights):
                problems.append(f"node {n!r} ({node.kind}): field {field!r} needs {need} bits "
                                f"(values {int(v.min())}..{int(v.max())}), format {fmt} has "
                                f"{what}={limit} and saturation is not allowed")
        if node.spiking and node.role == "neuron" and node.q is not None:
            need = intgraph.signed_bits(np.asarray(node.q.get("vth", 0)))
            if need > f.state_bits:
                problems.append(f"node {n!r} ({node.kind}): threshold needs {need} bits, format "
                                f"{fmt} has state_bits={f.state_bits}")
    return problems or quantize_problems(graph, fmt)


def compile(graph: Graph, out: str | Path, *, fmt: str | None = None, calibration_inputs: Any = None,
            saturate_weights: bool = False, input_bits: int = intgraph.INPUT_BITS,
            verilog: bool | None = None, force: bool = False) -> Path:
    """Quantize (if float) and write the FPGA artifact directory ``out`` (atomically).

    ``saturate_weights``: clip integer weights that exceed the format (recorded in
    ``target_info``); ``input_bits``: width of the graph inputs (1: spikes); ``verilog``: also
    write the Verilog design ``verilog/neuro_net.v`` (``None``: when the graph has at most
    ``VERILOG_AUTO_SYNAPSES`` synapses; the generated source grows with the synapse count)."""
    if egru.has_egru(graph):
        return egru.compile(graph, out, fmt=fmt, calibration_inputs=calibration_inputs,
                            formats=formats)
    if spikegpt.has_spikegpt(graph):
        return spikegpt.compile(graph, out, fmt=fmt, calibration_inputs=calibration_inputs,
                                formats=formats, force=force)
    q = prepare_graph(name, formats, graph, fmt, calibration_inputs,
                      lambda g, f: supports(g, f, saturate_weights=saturate_weights))
    saturated: dict[str, int] = {}
    if saturate_weights:
        fm = intgraph.fmt_of(q)
        q = copy.deepcopy(q)
        for n, node in q.nodes.items():
            if node.role == "synapse":
                w = np.asarray(node.weight)
                bad = int(((w > fm.weight_max) | (w < fm.weight_min)).sum())
                if bad:
                    saturated[n] = bad
                    node.weight = np.clip(w, fm.weight_min, fm.weight_max).astype(w.dtype)
    desc, arrays = intgraph.build(q, input_bits)
    model = onnx_step.build_step_model(desc, arrays)
    qonnx = onnx_step.qonnx_weights_model(desc, arrays)
    est = resources.estimate(desc, arrays)
    n_syn = sum(int(np.prod(np.shape(layer_w))) for layer_w in
                (arrays[la["weight"]] for la in desc["layers"] if la.get("weight")))
    spatial = [la["name"] for la in desc["layers"] if la["op"] in ("conv2d", "sumpool2d")]
    if verilog and spatial:
        raise UnsupportedGraph(name, [f"the Verilog generator has no conv2d/sumpool2d layers "
                                      f"(layers {spatial}); compile with verilog=False"])
    if verilog is None:
        verilog = n_syn <= VERILOG_AUTO_SYNAPSES and not spatial

    def write_files(tmp: Path) -> dict[str, str]:
        files = intgraph.save(desc, arrays, tmp)
        (tmp / "step.onnx").write_bytes(model.SerializeToString())
        (tmp / "weights.qonnx.onnx").write_bytes(qonnx.SerializeToString())
        (tmp / "resources.json").write_text(json.dumps(est, indent=1))
        files.update({"step.onnx": f"one time step in integer ONNX (opset {onnx_step.OPSET}; "
                                   "state in, state out)",
                      "weights.qonnx.onnx": "weights as QONNX Quant nodes",
                      "resources.json": "resource estimate per layer (model in the file)"})
        if verilog:
            from . import verilog as V

            files.update(V.write(desc, arrays, tmp / "verilog", prefix="verilog/"))
        return files

    info = {"compute_bits": onnx_step.compute_bits(desc, arrays), "onnx_opset": onnx_step.OPSET,
            "onnx_ir_version": onnx_step.IR_VERSION, "input_bits": input_bits,
            "layers": [layer["name"] for layer in desc["layers"]],
            "saturated_weights": saturated, "resources": est["total"],
            "verilog": ("verilog/neuro_net.v (fully parallel design)" if verilog else
                        f"not written (conv2d/sumpool2d layers {spatial}: no Verilog form yet)"
                        if spatial else
                        f"not written ({n_syn} synapses; compile(..., verilog=True) writes it)"),
            "resources_per_layer": [{k: r[k] for k in ("layer", "op", "weight_memory_bits",
                                                       "parameter_memory_bits", "state_memory_bits",
                                                       "fully_parallel", "time_multiplexed")}
                                    for r in est["layers"]]}
    return write_artifact(out, target=name, graph=q, write_files=write_files, target_info=info,
                          tools=("onnx", "onnxruntime"), force=force)


def _session(path: Path, threads: int):
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError("target fpga runs step.onnx with onnxruntime "
                          "(pip install onnxruntime==1.32.0)") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
        if isinstance(exc, (TypeError, AttributeError, MemoryError)):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactError(f"{path}: not a loadable ONNX model ({first})") from None
    return ort, sess


_ORT_TYPES = {"tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(int16)": np.int16,
              "tensor(int32)": np.int32, "tensor(int64)": np.int64}


def run(artifact: str | Path, spikes: Any, *, threads: int = 1, engine: str = "onnxruntime",
        **options: Any) -> Result:
    """Run ``artifact`` for every step of ``spikes`` (``[T, N]``, ``[T, B, N]`` or a dict per
    input): ``engine="onnxruntime"`` executes ``step.onnx``; ``engine="verilog"`` simulates the
    generated Verilog with Icarus Verilog (``iverilog``; each sample from reset). Returns every
    neuron layer's values (spikes; LI membranes) and every output as int64 ``[T, B, ...]``."""
    if options:
        raise ValueError(f"target fpga: unknown run options {sorted(options)}")
    if engine not in ("onnxruntime", "verilog"):
        raise ValueError(f"target fpga: engine must be 'onnxruntime' or 'verilog', got {engine!r}")
    path = Path(artifact)
    manifest = read_manifest(path, name)
    if manifest.get("target_info", {}).get("path") == "egru":
        if engine != "onnxruntime":
            raise ValueError("target fpga: an EGRU artifact runs on onnxruntime only (no Verilog)")
        return egru.run(path, manifest, spikes, threads)
    if manifest.get("target_info", {}).get("path") == "spikegpt":
        if engine != "onnxruntime":
            raise ValueError("target fpga: a SpikeGPT artifact runs on onnxruntime only (no Verilog)")
        return spikegpt.run(path, manifest, spikes, threads)
    g = load_artifact_graph(path)
    desc, arrays = intgraph.load(path)
    if desc.get("graph_digest") != manifest.get("graph_digest"):
        raise ArtifactError(f"{path}: graph.json was built from another graph than graph/ "
                            "(digest differs)")
    x = as_int_spikes(g, spikes)
    for inp in desc["inputs"]:
        top = int(x[inp["name"]].max(initial=0))
        if top >= 1 << inp["bits"]:
            raise ValueError(f"target fpga: input {inp['name']!r} has values up to {top}; this "
                             f"artifact takes {inp['bits']}-bit inputs (compile with input_bits=8 "
                             "for spike counts up to 255)")
    T, B = next(iter(x.values())).shape[:2]
    if engine == "verilog":
        spatial = [la["name"] for la in desc["layers"] if la["op"] in ("conv2d", "sumpool2d")]
        if spatial:
            raise ValueError(f"target fpga: no Verilog for conv2d/sumpool2d layers {spatial}; "
                             "run with engine='onnxruntime'")
        return _run_verilog(path, desc, x, T, B)
    ort, sess = _session(path / "step.onnx", threads)
    feeds: dict[str, np.ndarray] = {}
    for i in sess.get_inputs():
        if i.name.startswith("state/"):
            feeds[i.name] = np.zeros([B, *i.shape[1:]], _ORT_TYPES[i.type])
    names = [o.name for o in sess.get_outputs()]
    shapes = {layer["name"]: layer["shape"] for layer in desc["layers"]}
    keep = [n for n in names if n.startswith(("y/", "output/"))]
    rec = {n: np.empty((T, B, *shapes[n.split("/", 1)[1]]), np.int64) for n in keep}
    start = time.perf_counter()
    for t in range(T):
        for inp in desc["inputs"]:
            feeds[f"x/{inp['name']}"] = x[inp["name"]][t].reshape(B, -1).astype(np.uint8)
        outs = dict(zip(names, sess.run(None, feeds)))
        for n in keep:
            rec[n][t] = outs[n].reshape(rec[n].shape[1:])
        for n, v in outs.items():
            if n.startswith("next/"):
                feeds["state/" + n[5:]] = v
    seconds = time.perf_counter() - start
    result_spikes = {n[2:]: v for n, v in rec.items() if n.startswith("y/")}
    outputs = {n[7:]: v for n, v in rec.items() if n.startswith("output/")}
    lif = [layer["name"] for layer in desc["layers"] if layer["op"] == "lif"]
    active = {**{i["name"]: x[i["name"]] for i in desc["inputs"]},
              **{n: result_spikes[n] for n in lif}}
    syn_ops = 0
    for layer in desc["layers"]:
        if len(layer["sources"]) != 1 or layer["sources"][0]["node"] not in active:
            continue
        src = active[layer["sources"][0]["node"]]
        if layer["op"] in ("dense", "delayed_dense"):
            syn_ops += int(src.sum()) * layer["n_out"]
        elif layer["op"] == "conv2d":  # each event reaches its kernel taps inside the output
            fan = onnx_step.conv_fan_out(layer, intgraph.array(arrays, layer["weight"]))
            syn_ops += int((src.reshape(T, B, -1).sum((0, 1)) * fan).sum())
    stats = {
        "runtime": f"onnxruntime {ort.__version__} (step.onnx, CPU, {threads} thread(s))",
        "steps": int(T), "batch": int(B), "seconds": round(seconds, 4),
        "spikes": {n: int(result_spikes[n].sum()) for n in lif},
        "synaptic_accumulates": syn_ops,
        "neuron_updates": int(T * B * sum(layer["size"] for layer in desc["layers"]
                                          if layer["op"] in ("lif", "li"))),
        "resources": manifest.get("target_info", {}).get("resources", {}),
    }
    return Result(result_spikes, outputs, stats)


def _run_verilog(path: Path, desc: dict[str, Any], x: dict[str, np.ndarray], T: int, B: int) -> Result:
    from . import verilog as V

    _, arrays = intgraph.load(path)
    stored = path / "verilog" / "neuro_net.v"
    if stored.is_file() and stored.read_text() != V.generate(desc, arrays)[0]:
        raise ArtifactError(f"{stored}: differs from the design generated from graph.json "
                            "(the artifact was modified)")
    start = time.perf_counter()
    vals = V.simulate(desc, arrays, x)
    shapes = {layer["name"]: layer["shape"] for layer in desc["layers"]}
    out = {k: v.reshape(T, B, *shapes[k.split("/", 1)[1]]) for k, v in vals.items()}
    spikes = {k[2:]: v for k, v in out.items() if k.startswith("y/")}
    outputs = {k[7:]: v for k, v in out.items() if k.startswith("output/")}
    lif = [layer["name"] for layer in desc["layers"] if layer["op"] == "lif"]
    stats = {"runtime": "Icarus Verilog (verilog/neuro_net.v, fully parallel design)",
             "steps": int(T), "batch": int(B), "seconds": round(time.perf_counter() - start, 3),
             "spikes": {n: int(spikes[n].sum()) for n in lif}}
    return Result(spikes, outputs, stats)


def resource_estimate(artifact_or_graph: Any, fmt: str | None = None,
                      calibration_inputs: Any = None) -> dict[str, Any]:
    """The resource estimate of an artifact directory, or of a graph (quantized to ``fmt`` if
    it is float)."""
    if isinstance(artifact_or_graph, (str, Path)):
        desc, arrays = intgraph.load(artifact_or_graph)
    else:
        q = prepare_graph(name, formats, artifact_or_graph, fmt, calibration_inputs, supports)
        desc, arrays = intgraph.build(q)
    return resources.estimate(desc, arrays)


__all__ = ["compile", "formats", "name", "resource_estimate", "run", "supports"]
