"""The ``neuro`` command line.

Every user mistake (bad path, corrupt file, wrong shape, bad option) prints one line
``neuro: error: ...`` on stderr and exits with status 2, without a traceback; set
``NEURO_DEBUG=1`` to see the traceback. Outputs are written to a temporary name and renamed into
place, so a failed command leaves nothing partial behind.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, cast

import numpy as np


class UserError(Exception):
    """A problem with the user's input; reported in one line, exit status 2."""


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    from .models import FAMILIES

    families = [f.strip() for f in args.families.split(",") if f.strip()] if args.families else None
    unknown = sorted(set(families or ()) - set(FAMILIES))
    if unknown:
        raise UserError(f"--families: unknown {unknown}; known: {', '.join(FAMILIES)}")
    return 0 if run_demo(Path(args.out), seed=args.seed, epochs=args.epochs,
                         samples=args.samples, families=families) else 1


def _cmd_setup(args: argparse.Namespace) -> int:
    from .hardware.loihi import provision

    provision.provision(Path(args.into) if args.into else None, python=args.python,
                        force=args.force)
    return 0


def _env_int(name: str, default: int) -> int:
    """A positive integer default taken from environment variable ``name`` when set."""
    text = os.environ.get(name)
    if not text:
        return default
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError as exc:
        raise SystemExit(f"neuro: error: {name}: {exc}") from None


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named by ``argv`` (its first word that is not an option), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


def _cmd_train(args: argparse.Namespace) -> int:
    from .models import FAMILIES
    from .models.base import TrainRequest

    family = FAMILIES[args.model]
    cfg = family.read_config(args.config) if args.config else {}
    family.run(TrainRequest(data=getattr(args, "data", None), config=cfg, epochs=args.epochs,
                            seed=args.seed, out=Path(f"runs/{args.model}" if args.out is None else args.out), args=args))
    return 0


def _describe_checkpoint(path: Path) -> dict:
    from .checkpoint_info import describe_checkpoint

    return describe_checkpoint(path)  # the safetensors header only: no torch


def _info_lines(desc: dict, indent: str = "") -> list[str]:
    """``neuro info``'s text: one ``key: value`` line per scalar, nested dicts indented, lists of
    strings one per line, the tensors as a table."""
    lines = []
    for key, value in desc.items():
        if key == "tensors":
            lines.append(f"{indent}tensors:")
            lines.extend(f"{indent}  {name:32s} {t['dtype']:8s} {t['shape']}"
                         for name, t in value.items())
        elif isinstance(value, dict) and value:
            lines.append(f"{indent}{key}:")
            lines.extend(_info_lines(value, indent + "  "))
        elif isinstance(value, list) and len(value) > 4 and all(isinstance(v, str) for v in value):
            lines.append(f"{indent}{key}: {len(value)}")
            lines.extend(f"{indent}  {v}" for v in value)
        else:
            lines.append(f"{indent}{key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")
    return lines


def _cmd_info(args: argparse.Namespace) -> int:
    from .datasets import load_spikes

    path = Path(args.path)
    if path.is_dir() and (path / "graph.json").is_file() and not (path / "manifest.json").is_file():
        from .graph import Graph

        g = Graph.load(path)
        shapes = g.infer_shapes()
        desc = {"kind": "graph", "path": str(path), "dt": g.dt,
                "format": g.metadata.get("format", {}).get("name", "float"),
                "digest": g.digest()[:16],
                "nodes": {n: f"{node.kind} -> {list(shapes[n])}" for n, node in g.nodes.items()},
                "edges": [f"{a} -> {b}" for a, b in g.edges]}
    elif path.is_dir():
        manifest = path / "manifest.json"
        if not manifest.is_file():
            raise UserError(f"{path}: a directory without manifest.json or graph.json is not a "
                            "neuro artifact")
        from .safeio import read_json

        doc = read_json(manifest)
        if not isinstance(doc, dict):
            raise UserError(f"{manifest}: expected a JSON object")
        desc = {"kind": "artifact", "path": str(path), **doc}
    elif path.suffix == ".npz":
        arr = load_spikes(path)
        desc = {"kind": "spikes", "path": str(path), "shape": list(arr.shape),
                "dtype": str(arr.dtype), "spikes": int(arr.sum()), "rate": float(arr.mean())}
    elif path.exists():
        desc = _describe_checkpoint(path)
    else:
        raise UserError(f"{path}: no such file or directory")
    if args.json:
        print(json.dumps(desc, indent=2))
        return 0
    print("\n".join(_info_lines(desc)))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump): ``neuro demo: error: ...``, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and np.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _run_input(args: argparse.Namespace) -> np.ndarray:
    """``neuro run``'s input: a spike ``.npz``, or tonic-style events (``.npy`` structured array
    with ``x``, ``t`` in µs, ``p`` and optionally ``y``) binned by ``--dt`` on a ``--sensor``."""
    from .datasets import from_tonic, load_spikes

    if not str(args.input).endswith(".npy"):
        return load_spikes(args.input)
    if args.dt is None or args.sensor is None:
        raise UserError(f"{args.input}: events (.npy) are binned into spikes: pass --dt SECONDS "
                        "and --sensor W,H,P (e.g. --dt 1e-3 --sensor 34,34,2 for N-MNIST)")
    try:
        events = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"{args.input}: not a readable .npy file ({exc})") from None
    try:
        sensor = [int(v) for v in args.sensor.split(",")]
    except ValueError:
        raise UserError(f"--sensor: expected W,H,P integers, got {args.sensor!r}") from None
    try:
        return from_tonic(events, sensor, dt=args.dt)
    except ValueError as exc:
        raise UserError(f"{args.input}: {exc}") from None


def _token_input(graph, path: str | None) -> tuple[np.ndarray, str]:
    """A language model's input (``graph.metadata["input"] == "one-hot tokens"``): one-hot tokens
    ``[T, B, V]`` from ``path`` (an ``.npz`` with ``tokens``, int ids ``[T, B]``, or ``spikes``,
    one-hot; a UTF-8 text file), else the held-out offline text (``neuro.energy.cli.token_data``)."""
    from .datasets import load_spikes
    from .energy.cli import token_data

    try:
        if path and str(path).endswith(".npz"):
            with np.load(path, allow_pickle=False) as f:
                has_tokens = "tokens" in f.files
            if not has_tokens:
                return load_spikes(path), str(path)
        return token_data(graph, path)
    except (OSError, ValueError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else repr(exc)
        raise UserError(msg.replace("pass --data", "pass --input")) from None


def _is_lm(graph) -> bool:
    return graph.metadata.get("input") == "one-hot tokens"


def _cmd_run(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .datasets import save_spikes
    from .graph import from_module, simulate

    path = Path(args.target)
    if path.is_dir():
        return _run_artifact(path, args)
    model, meta = load_checkpoint(path)
    graph = from_module(model)
    spikes_in = _token_input(graph, args.input)[0] if _is_lm(graph) else _run_input(args)
    want = tuple(cast(Any, graph.nodes[graph.inputs()[0]]).shape)
    spikes_in = _fit_input_shape(spikes_in, want, args.input, f"the model {path.name}")
    values = simulate(graph, spikes_in, record=True)
    out_name = graph.outputs()[0]
    spiking = [n for n in graph.nodes if graph.nodes[n].spiking and graph.nodes[n].role != "input"]
    last_spiking = spiking[-1] if spiking else out_name
    spikes = values[last_spiking].numpy()
    output = values[out_name].numpy()
    extra = {"output": output}
    if args.out:
        save_spikes(args.out, spikes.astype(np.uint8) if spiking and np.isin(spikes, (0, 1)).all() else spikes, **extra)
    rate = float((spikes != 0).mean()) if spiking else float("nan")  # events (EGRU: graded)
    print(f"ran {meta['model']} on {spikes_in.shape} input: spikes of {last_spiking!r} "
          f"{list(spikes.shape)} (rate {rate:.4f}), output {out_name!r} {list(output.shape)}"
          + (f" -> {args.out}" if args.out else ""))
    return 0


def _export_targets() -> list[str]:
    from .hardware import TARGETS

    return [*TARGETS, "nir"]


def _backend(target: str):
    from .hardware import get_backend

    try:
        return get_backend(target)
    except ImportError as exc:
        raise UserError(f"target {target}: {exc}") from None


def _fit_input_shape(x: np.ndarray, n_in: tuple[int, ...], path: str | None, what: str) -> np.ndarray:
    """``x [T, (B,) N]`` for a model whose input is ``n_in``: as it is when ``N`` matches; a model
    with an image-shaped input ``[C, H, W]`` also takes the flattened ``N = C H W`` (row-major,
    as ``numpy.reshape``), reshaped here; anything else is a one-line error."""
    if tuple(x.shape[-len(n_in):]) == n_in and x.ndim in (len(n_in) + 1, len(n_in) + 2):
        return x
    size = int(np.prod(n_in))
    if len(n_in) > 1 and x.ndim in (2, 3) and x.shape[-1] == size:
        return x.reshape(*x.shape[:-1], *n_in)
    want = n_in[0] if len(n_in) == 1 else f"{list(n_in)} (or {size} flattened)"
    raise UserError(f"{path}: spikes have {x.shape[-1]} channels, {what} expects {want}")


def _model_input(graph, path: str | None, model_name: str) -> tuple[np.ndarray, str]:
    from .datasets import default_spikes, load_spikes

    n_in = tuple(graph.nodes[graph.inputs()[0]].shape)
    if _is_lm(graph):
        return _token_input(graph, path)
    if not path:
        return default_spikes(n_in)
    return _fit_input_shape(load_spikes(path), n_in, path, f"the model {model_name}"), path


def _stats_table(rows: list[dict], indent: str) -> list[str]:
    """A list of flat records (SpiNNaker's per-core statistics) as an aligned table."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
              for v in (r.get(c, "") for c in cols)] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return [indent + fmt.format(*cols), *(indent + fmt.format(*row) for row in cells)]


def _format_stats(stats: dict, indent: str = "  ") -> list[str]:
    lines = []
    for k, v in stats.items():
        if isinstance(v, list) and v and all(isinstance(e, dict) for e in v) and all(
                not isinstance(x, dict) for e in v for x in e.values()):
            lines.append(f"{indent}{k}:")
            lines.extend(_stats_table(v, indent + "  "))
        elif isinstance(v, dict):
            lines.append(f"{indent}{k}:")
            lines.extend(_format_stats(v, indent + "  "))
        elif isinstance(v, (list, tuple)) and len(v) > 8:
            top = f", max {max(v)}" if all(isinstance(e, (int, float)) for e in v) else ""
            lines.append(f"{indent}{k}: [{len(v)} values{top}]")
        else:
            lines.append(f"{indent}{k}: {v}")
    return lines


def _run_artifact(path: Path, args: argparse.Namespace) -> int:
    import inspect

    from .datasets import save_spikes
    from .hardware.base import load_artifact_graph, read_manifest

    manifest = read_manifest(path)
    backend = _backend(manifest["target"])
    graph = load_artifact_graph(path)
    x = _token_input(graph, args.input)[0] if _is_lm(graph) else _run_input(args)
    n_in = tuple(graph.nodes[graph.inputs()[0]].shape)
    x = _fit_input_shape(x, n_in, args.input, f"the artifact {path}")
    options = {}
    if args.threads is not None:
        if "threads" not in inspect.signature(backend.run).parameters:
            raise UserError(f"--threads: target {manifest['target']} takes no thread count")
        options["threads"] = args.threads
    from .progress import heartbeat

    with heartbeat(f"{manifest['target']}: running {x.shape[0]} steps"
                   + (f" x {x.shape[1]} samples" if x.ndim == 3 else "")):
        result = backend.run(path, x, **options)
    squeeze = x.ndim == 2
    spiking = [n for n in result.spikes if graph.nodes[n].spiking]
    out_name = graph.outputs()[0]
    output = result.outputs[out_name]
    spikes = result.spikes[spiking[-1]] if spiking else output
    if squeeze:
        spikes, output = spikes[:, 0], output[:, 0]
    if args.out:
        save_spikes(args.out, spikes.astype(np.uint8) if spiking and np.isin(spikes, (0, 1)).all() else spikes, output=output)
    rate = float((spikes != 0).mean()) if spiking else float("nan")  # events (EGRU: graded)
    print(f"ran {manifest['target']} artifact {path} ({manifest['number_format']}) on "
          f"{list(x.shape)} input: spikes of {spiking[-1] if spiking else out_name!r} "
          f"{list(spikes.shape)} (rate {rate:.4f}), output {out_name!r} {list(output.shape)}"
          + (f" -> {args.out}" if args.out else ""))
    if result.stats:
        print("statistics:")
        print("\n".join(_format_stats(result.stats)))
    return 0


def _export_hardware(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .graph import from_module

    backend = _backend(args.target)
    if args.format is not None and args.format not in backend.formats:
        raise UserError(f"target {args.target} takes --format {'|'.join(backend.formats)}, "
                        f"got {args.format!r}")
    model, meta = load_checkpoint(args.checkpoint)
    graph = from_module(model)
    from .hardware.base import group_problems

    problems = backend.supports(graph, args.format)
    if problems:  # one line (the CLI's error contract), every problem on it
        raise UserError(f"target {args.target} cannot run {args.checkpoint}: {len(problems)} "
                        f"problem(s): {'; '.join(group_problems(problems))}; nothing written")
    x, source = _model_input(graph, args.input, meta["model"])
    fmt = args.format
    if fmt is None and len(backend.formats) > 1:  # the rule of verify and the demo
        from .hardware.agreement import GOOD_AGREEMENT, choose_format

        try:
            fmt, scores = choose_format(graph, tuple(backend.formats), x)
        except ValueError as exc:
            raise UserError(f"target {args.target}: {exc}") from None
        print(f"format {fmt}: the cheapest of {', '.join(backend.formats)} whose spikes agree with "
              f"the float model to {GOOD_AGREEMENT} on {source} ("
              + ", ".join(f"{f} {a:.3f}" for f, a in scores.items())
              + "); --format NAME chooses by hand")
    out = backend.compile(graph, args.out, fmt=fmt, calibration_inputs=x,
                          **({"force": True} if args.force else {}))
    from .hardware.base import read_manifest

    manifest = read_manifest(out)
    print(f"exported {meta['model']} to {args.target} ({manifest['number_format']}, calibrated on "
          f"{source}): {out}")
    for rel, what in manifest["files"].items():
        print(f"  {rel:28s} {what}")
    return 0


def _nir_io():
    from .graph import nir_io

    try:
        nir_io.require_nir()
    except ImportError as exc:
        raise UserError(str(exc)) from None
    return nir_io


def _cmd_export(args: argparse.Namespace) -> int:
    from .atomic import atomic_dir
    from .checkpoint import load_checkpoint
    from .graph import from_module

    if args.target != "nir":
        return _export_hardware(args)
    if args.format not in (None, "nir"):
        raise UserError(f"target nir writes format 'nir' only, got --format {args.format!r}")
    nir_io = _nir_io()
    path = Path(args.checkpoint)
    model, meta = load_checkpoint(path)
    graph = from_module(model)
    nir_graph = nir_io.to_nir(graph)  # fails before anything is written
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")
    if (out / "manifest.json").is_file() and not args.force:
        raise UserError(f"{out}: holds a hardware artifact (refusing to write model.nir into it; "
                        "--force writes it anyway)")
    if out.is_dir():
        target = nir_io.write_nir(nir_graph, out / "model.nir")  # temporary name, then rename
    else:
        with atomic_dir(out) as tmp:
            nir_io.write_nir(nir_graph, tmp / "model.nir")
        target = out / "model.nir"
    print(f"exported {meta['model']} ({len(graph.nodes)} nodes, dt={graph.dt:g} s) to NIR: {target}")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from .checkpoint import save_checkpoint
    from .graph import GraphModel

    nir_io = _nir_io()
    src = Path(args.model)
    nir_graph = nir_io.read_nir_graph(src)
    recorded = nir_io.recorded_dt(nir_graph)
    if args.dt is None and recorded is None:
        raise UserError(f"{src}: the file records no time step (metadata 'dt'; snnTorch and Norse "
                        "do not write one): pass --dt SECONDS, the step the exporter simulated "
                        f"with (snnTorch: {nir_io.SNNTORCH_DT:g})")
    try:  # before any warning: an error is the first line on stderr
        graph = nir_io.from_nir(nir_graph, args.dt if args.dt is not None else recorded,
                                reset=args.reset, reset_timing=args.reset_timing)
    except ValueError as exc:  # the node and field; the file too
        raise UserError(f"{src}: {exc}") from None
    if args.dt is not None and recorded is not None and not np.isclose(args.dt, recorded):
        print(f"neuro: warning: {src} records dt={recorded:g} s; using --dt {args.dt:g}",
              file=sys.stderr)
    silent = nir_io.unrecorded_resets(nir_graph)
    if silent and args.reset is None:
        names = ", ".join(silent[:4]) + (f" and {len(silent) - 4} more" if len(silent) > 4 else "")
        print(f"neuro: warning: {src} does not record the reset of {names}: read by NIR's rule "
              "(reset to v_reset at once; --reset zero --reset-timing immediate). snnTorch's "
              "Leaky/Synaptic default is --reset subtract --reset-timing deferred", file=sys.stderr)
    gm = GraphModel(graph)
    path = save_checkpoint(args.out, gm, name="graph", config=gm.config_dict(),
                           info={"imported_from": str(src), "format": "nir", "dt": graph.dt,
                                 "dt_from": "--dt" if args.dt is not None else "file",
                                 "reset": args.reset or "file/NIR rule",
                                 "reset_timing": args.reset_timing or "file/NIR rule"})
    kinds = ", ".join(sorted({n.kind for n in graph.nodes.values()}))
    print(f"imported {src.name}: {len(graph.nodes)} nodes ({kinds}), dt={graph.dt:g} s -> {path}")
    return 0


def _task_labels(path: str | None, x: np.ndarray, model: Any) -> tuple[Any, Any]:
    """``(labels [B], decision rule)`` for scoring targets on the task: the spike file's optional
    ``labels`` key and the model's ``decide``; ``(None, None)`` without labels (said when the
    model has no decision rule for them)."""
    from .datasets import load_labels

    if not path:
        return None, None
    try:
        labels = load_labels(path, x.shape[1] if x.ndim == 3 else 1)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if labels is None:
        return None, None
    decide = getattr(model, "decide", None)
    if not callable(decide):
        print(f"labels: {path} has {len(labels)}, but {type(model).__name__} has no decision "
              "rule (FamilyModel.decide): no task accuracy")
        return None, None
    print(f"labels: {len(labels)} from {path}: each target's task accuracy is shown next to the "
          "float model's")
    return labels, decide


def _cmd_verify(args: argparse.Namespace) -> int:
    from .atomic import atomic_write
    from .checkpoint import load_checkpoint
    from .graph import from_module
    from .graph.formats import get_format
    from .graph.mismatch import mismatch_report
    from .hardware import TARGETS
    from .verify import exit_status, run_targets

    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    for f in formats:
        get_format(f)  # unknown names fail before any work
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise UserError(f"--targets: unknown hardware target {unknown[0]!r}; known: "
                        f"{', '.join(TARGETS)}")
    model, meta = load_checkpoint(args.checkpoint)
    graph = from_module(model)
    x, source = _model_input(graph, args.input, meta["model"])
    print(f"verify {meta['model']} ({args.checkpoint}) on {source}")
    labels, decide = _task_labels(args.input, x, model)
    reports, problems = [], []
    for f in formats:
        try:
            rep = mismatch_report(graph, f, x)
        except ValueError as exc:
            problems.append(f"{f}: cannot quantize: {exc}")
            print(f"format {f}: cannot quantize: {exc}")
            continue
        reports.append(rep)
        print(rep.table())
    rows = []
    if targets:
        print(f"targets ({len(targets)}): each against its reference executor and the float model")
        rows = run_targets(graph, x, targets, labels=labels, decide=decide)
        for r in rows:
            if r.check is not None and r.check.comparison.ok:
                print(r.check.comparison.table())
    if args.out:
        data = {"checkpoint": str(args.checkpoint), "input": source,
                "reports": [r.as_dict() for r in reports], "problems": problems,
                "targets": [r.as_dict() for r in rows if r.ran],
                "not_run": [{"target": r.target, "reason": r.reason} for r in rows if not r.ran]}
        atomic_write(args.out, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=1)))
    if not reports and not rows:
        raise UserError("no format or target could represent the model: " + "; ".join(problems))
    status = exit_status(rows)
    if status:
        bad = [r.target for r in rows if r.status == "DIFFERS"]
        missing = [r.target for r in rows if not r.ran]
        print("neuro: verify: " + "; ".join(
            ([f"values differ from the reference executor on {', '.join(bad)} (exit 1)"] if bad else [])
            + ([f"could not run on {', '.join(missing)} (exit 3)"] if missing else [])),
            file=sys.stderr)
    return status


def _cmd_energy(args: argparse.Namespace) -> int:
    from .energy.cli import run as energy_run
    from .energy.cli import summary as energy_summary

    paths = energy_run(args.checkpoint, args.data, args.out, targets=args.targets,
                       costs=args.costs, batch_size=args.batch_size)
    print("\n".join(energy_summary(paths["json"])))
    return 0


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``neuro`` parser. The model families (and with them torch) are imported only when
    ``argv`` names ``train`` or a command a family adds, or when ``argv`` is None (the whole
    parser); otherwise their names and summaries come from :mod:`neuro.catalog`, which keeps
    ``neuro --help`` and ``neuro info`` fast."""
    from .catalog import FAMILY_COMMANDS, FAMILY_SUMMARIES

    full = argv is None or _command_of(argv) in ("train", *FAMILY_COMMANDS)
    parser = _Parser(
        prog="neuro",
        description="Spiking neural networks: train in PyTorch, export to neuromorphic targets.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=_Parser)
    original_add = sub.add_parser

    def add_parser(name: str, **kw: Any) -> argparse.ArgumentParser:  # help doubles as description
        kw.setdefault("description", kw.get("help"))
        return original_add(name, **kw)

    sub.add_parser = add_parser  # type: ignore[method-assign,assignment]
    demo = sub.add_parser("demo", help="train every model family offline, run it on every hardware "
                                       "target, report energy")
    demo.add_argument("--out", default="neuro-demo", help="output directory (default: neuro-demo)")
    demo.add_argument("--epochs", type=_positive_int, default=_env_int("NEURO_DEMO_EPOCHS", 8),
                      help="training epochs (default: 8, or $NEURO_DEMO_EPOCHS)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument("--samples", type=_positive_int, default=_env_int("NEURO_DEMO_SAMPLES", 16),
                      help="test samples run on every hardware target (default: 16, or "
                           "$NEURO_DEMO_SAMPLES)")
    demo.add_argument("--families", default=os.environ.get("NEURO_DEMO_FAMILIES"),
                      help="comma-separated families to run (default: every family with a demo, "
                           "or $NEURO_DEMO_FAMILIES)")
    demo.add_argument("--deterministic", action="store_true",
                      help="one torch thread and deterministic algorithms (see neuro train)")
    demo.set_defaults(func=_cmd_demo)
    setup = sub.add_parser("setup", help="provision an optional simulator: `neuro setup lava` "
                                         "creates the Lava environment the Loihi backend runs in")
    setup.add_argument("what", choices=["lava"], help="what to set up (lava: lava-nc 0.10 with "
                                                      "numpy<2 in a per-user cache)")
    setup.add_argument("--into", metavar="DIR", help="where to create it (default: "
                                                     "$NEURO_LAVA_HOME or ~/.cache/neuro/lava)")
    setup.add_argument("--python", default=sys.executable,
                       help="the Python that creates the environment (default: this one)")
    setup.add_argument("--force", action="store_true", help="rebuild an existing environment")
    setup.set_defaults(func=_cmd_setup)
    tr = sub.add_parser("train", help="train a model family: " + ", ".join(FAMILY_SUMMARIES))
    if not full:  # not the command being run: its name and summary are enough
        for name, help_ in FAMILY_COMMANDS.items():
            sub.add_parser(name, help=help_)
        _add_builtin_commands(sub)
        return parser
    from .models import FAMILIES

    families = tr.add_subparsers(dest="model", metavar="MODEL", required=True,
                                 parser_class=_Parser)
    for family in FAMILIES.values():
        fp = families.add_parser(family.name, help=family.summary, description=family.summary)
        family.add_arguments(fp)
        fp.add_argument("--config", help="JSON: model config keys plus training keys (a family "
                                          "may also take preset names)")
        fp.add_argument("--epochs", type=_positive_int, help="training epochs (the family's default)")
        fp.add_argument("--seed", type=int, default=0)
        fp.add_argument("--deterministic", action="store_true",
                        help="one torch thread and deterministic algorithms: the same seed gives "
                             "the same weights whatever OMP_NUM_THREADS is (slower)")
        fp.add_argument("--out", help="output directory (default: runs/MODEL)")
        fp.set_defaults(func=_cmd_train)
    for family in FAMILIES.values():  # the commands a family adds (neuro generate, ...)
        for command in family.commands:
            if command.name in sub.choices:
                raise RuntimeError(f"family {family.name} adds command {command.name!r}, which exists")
            cp = sub.add_parser(command.name, help=command.help, description=command.help)
            command.add_arguments(cp)
            cp.set_defaults(func=command.run)
    _add_builtin_commands(sub)
    return parser


def _add_builtin_commands(sub: Any) -> None:
    """The commands that do not come from a family: info, run, export, verify, energy, import."""
    info = sub.add_parser("info", help="show what a checkpoint, artifact or spike file holds")
    info.add_argument("path", help="checkpoint (.safetensors), graph or artifact directory, spikes .npz")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=_cmd_info)
    run = sub.add_parser("run", help="run a hardware artifact, or a checkpoint on the float "
                                     "reference executor")
    run.add_argument("target", metavar="ARTIFACT_DIR|CKPT",
                     help="artifact directory (neuro export) or checkpoint (.safetensors)")
    run.add_argument("--input", required=True, help="spikes .npz with 'spikes' [T, N] or [T, B, N], "
                                                    "or tonic-style events .npy (x, y, t in µs, p; "
                                                    "needs --dt and --sensor)")
    run.add_argument("--dt", type=_positive_float, metavar="SECONDS",
                     help="events input: bin width in seconds")
    run.add_argument("--sensor", metavar="W,H,P",
                     help="events input: sensor size, channels p*H*W + y*W + x")
    run.add_argument("--out", help="write 'spikes' (last spiking layer) and 'output' to this .npz")
    run.add_argument("--threads", type=_positive_int,
                     help="simulator threads, for targets that take them (nest)")
    run.set_defaults(func=_cmd_run)
    export = sub.add_parser("export", help="export a checkpoint to a target (" + ", ".join(_export_targets()) + ")")
    export.add_argument("checkpoint", metavar="CKPT", help="checkpoint (.safetensors)")
    export.add_argument("--target", required=True, choices=_export_targets(),
                        help="target: " + ", ".join(_export_targets()))
    export.add_argument("--out", required=True, help="output directory (gets model.nir)")
    export.add_argument("--format", metavar="NAME",
                        help="number format (loihi: loihi2; spinnaker: spinnaker; fpga: "
                             "int8|int16|int8-m12|int16-m12); default for a target with several: "
                             "the cheapest whose spikes agree with the float model to 0.99 on "
                             "--input, as verify and the demo choose")
    export.add_argument("--input", help="spikes .npz used to calibrate the quantization "
                                        "(default: random Bernoulli(0.1), T=100, B=8)")
    export.add_argument("--force", action="store_true",
                        help="replace an existing artifact of another target in --out")
    export.set_defaults(func=_cmd_export)
    ver = sub.add_parser("verify", help="compare the float model with its integer formats and the hardware targets",
                         epilog="exit status: 0 every requested target ran and kept its promise; "
                                "1 a target's values differ from its reference executor; 3 a "
                                "target could not run the model (listed with the reason); 2 a "
                                "usage error")
    ver.add_argument("checkpoint", metavar="CKPT", help="checkpoint (.safetensors)")
    ver.add_argument("--formats", default="loihi2,spinnaker,int8,int16",
                     help="number formats to check (default: loihi2,spinnaker,int8,int16)")
    ver.add_argument("--targets", default="",
                     help="hardware targets to run and compare with the reference executor: "
                          "bit for bit (integer targets) or at the target's stated agreement "
                          "(float targets), and with the float model; a target with several "
                          "formats gets the cheapest that follows the float model: "
                          + ",".join(_export_targets()[:-1]))
    ver.add_argument("--input", help="spikes .npz (default: random Bernoulli(0.1), T=100, B=8); "
                                     "with a 'labels' [B] array, each target's task accuracy is "
                                     "shown next to the float model's")
    ver.add_argument("--out", help="also write the report as JSON to this file")
    ver.set_defaults(func=_cmd_verify)
    en = sub.add_parser("energy", help="estimate energy per target from a run on data: "
                                       "report.html, report.md, report.json")
    en.add_argument("checkpoint", metavar="CKPT", help="checkpoint (.safetensors)")
    en.add_argument("--data", metavar="PATH",
                    help="spikes .npz ('spikes' [T, N] or [T, B, N]); default: the test split of the "
                         "checkpoint's offline task, else random Bernoulli(0.1) spikes, T=100, B=8")
    en.add_argument("--out", required=True, metavar="DIR", help="report directory")
    en.add_argument("--targets", help="comma-separated cost-table targets (default: all; the ANN "
                                      "baseline is always included)")
    en.add_argument("--costs", metavar="TABLE",
                    help="your cost table (JSON or TOML), merged over the built-in one")
    en.add_argument("--batch-size", type=_positive_int, default=64,
                    help="samples run at a time (default: 64)")
    en.set_defaults(func=_cmd_energy)
    imp = sub.add_parser("import", help="import a NIR model into a checkpoint")
    imp.add_argument("model", metavar="MODEL.nir", help="NIR file (nir.write / HDF5)")
    imp.add_argument("--out", required=True, help="checkpoint to write (.safetensors)")
    imp.add_argument("--dt", type=_positive_float, metavar="SECONDS",
                     help="simulation step in seconds; required when the file records none "
                          "(snnTorch's and Norse's files do not)")
    imp.add_argument("--reset", choices=["zero", "subtract"],
                     help="reset of neurons the file gives none for (default: NIR's rule, zero)")
    imp.add_argument("--reset-timing", choices=["immediate", "deferred"],
                     help="when that reset applies (deferred: snnTorch's reset_delay=True)")
    imp.set_defaults(func=_cmd_import)


#: what ``--out`` names, per command: a directory or a file (checked before any work)
_OUT_KINDS = {"demo": "dir", "train": "dir", "export": "dir", "energy": "dir", "run": "file",
              "verify": "file", "import": "file"}


def _check_out(args: argparse.Namespace) -> None:
    """Refuse an ``--out`` that cannot be written before any long work starts: a file where a
    directory is wanted (or the reverse), or a parent that is not a writable directory."""
    kind = _OUT_KINDS.get(getattr(args, "command", ""), None)
    out = getattr(args, "out", None)
    if kind is None or out is None:
        return
    if not str(out).strip():  # not replaced by a default: an empty name is a mistake
        raise UserError("--out: an empty path (give a file or directory name)")
    path = Path(out)
    if path.exists():
        if kind == "dir" and not path.is_dir():
            raise UserError(f"--out {path}: exists and is not a directory")
        if kind == "file" and path.is_dir():
            raise UserError(f"--out {path}: is a directory, expected a file name")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"--out {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"--out {path}: cannot write in {parent} (permission denied)")


def _deterministic() -> None:
    """``--deterministic``: one intra-op thread and torch's deterministic algorithms, so a seed
    gives the same weights on this machine whatever ``OMP_NUM_THREADS`` says (the thread count
    and the flag are recorded in the checkpoint's ``info``)."""
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    from .hardware.workers import raise_on_termination

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)  # usage errors: one line, SystemExit(2)
    # Warnings are held back while the command runs, so that an error is the first line on
    # stderr; on success (or a non-user failure) they are shown afterwards. SIGTERM/SIGHUP raise
    # SystemExit(128 + signal), so temporary files and worker processes are cleaned up.
    with warnings.catch_warnings(record=True) as caught, raise_on_termination():
        try:
            _check_out(args)
            if getattr(args, "deterministic", False):
                _deterministic()
            status = int(args.func(args) or 0)
        except (UserError, ValueError, OSError) as exc:
            if os.environ.get("NEURO_DEBUG") == "1":
                raise
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"neuro: error: {msg}", file=sys.stderr)
            status = 2
        except KeyboardInterrupt:
            print("neuro: interrupted", file=sys.stderr)
            status = 130
        finally:
            for w in caught:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return status


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


__all__ = ["main", "build_parser", "UserError"]
