"""``neuro energy CKPT [--data PATH] --out DIR``: count a real run, estimate every target, report.

:func:`run` is what the command line calls; :func:`write_report` does the same for a graph
already in memory; :func:`summary` gives the console lines. Both raise ``ValueError`` with one line naming the problem (missing or mismatched data,
unknown target, bad cost table or statistics) before anything is written.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import report as rep
from .backend_stats import check_stats
from .costs import CostTable, load_cost_table
from .counting import count
from .estimate import estimate


def default_input(n_in: tuple[int, ...]) -> tuple[np.ndarray, str]:
    """:func:`neuro.datasets.default_spikes` (the default input of ``neuro verify``)."""
    from ..datasets import default_spikes

    x, what = default_spikes(n_in)
    return x, what + " (no --data given)"


def load_data(graph: Any, data: str | Path | None, info: dict[str, Any] | None = None,
              model_name: str = "the model") -> tuple[np.ndarray, str]:
    """``(x[T, B, N], description)``: the ``spikes`` array of ``data`` (.npz); without ``data`` the
    test split of the checkpoint's own offline task when its info names one, else
    :func:`default_input`."""
    n_in = tuple(graph.nodes[graph.inputs()[0]].shape)
    if graph.metadata.get("input") == "one-hot tokens":
        return token_data(graph, data)
    if data is not None:
        from ..datasets import load_spikes

        x = load_spikes(data)
        if tuple(x.shape[-len(n_in):]) != n_in:
            raise ValueError(f"{data}: spikes have {x.shape[-1]} channels, {model_name} expects {n_in[0]}")
        return x, str(data)
    info = info or {}
    if "delay_pattern_task" in (info.get("task"), info.get("data")) and "seed" in info:
        from ..datasets import delay_pattern_task

        seed = int(info["seed"]) + 1
        test = delay_pattern_task(seed=seed)[1]
        if (test.n_channels,) != n_in:
            raise ValueError(f"the checkpoint's task has {test.n_channels} channels, {model_name} "
                             f"expects {n_in[0]}: pass --data")
        x = np.ascontiguousarray(test.spikes.transpose(1, 0, 2)).astype(np.float32)
        return x, (f"test split of delay_pattern_task(seed={seed}), the checkpoint's training task "
                   f"({len(test)} samples)")
    return default_input(n_in)


#: token windows of a language model's default energy input: B windows of T tokens
TOKEN_WINDOWS = (4, 128)


def token_data(graph: Any, data: str | Path | None) -> tuple[np.ndarray, str]:
    """One-hot tokens ``[T, B, V]`` for a language model's graph (``metadata["input"] ==
    "one-hot tokens"``).

    ``data``: a ``.npz`` file with key ``tokens`` (int ids ``[T, B]``, or ``[T]`` for one
    sequence), or a UTF-8 text file, read as ``B = 4`` consecutive windows of ``T = 128`` tokens
    with the checkpoint's own tokenizer (``config["vocab"]``; bytes when it records none and has
    256 symbols). Without ``data``: the held-out part of the offline Shakespeare corpus
    (``neuro.datasets.text``), when the checkpoint's tokenizer can encode it."""
    from ..datasets import text
    from ..models.spikegpt.graph import one_hot_tokens

    V = int(graph.nodes[graph.inputs()[0]].shape[0])
    if data is not None and Path(data).suffix == ".npz":
        from ..datasets import load_npz_array

        ids = np.asarray(load_npz_array(data, "tokens"))
        if ids.dtype.kind not in "iu" or ids.ndim not in (1, 2) or ids.size == 0:
            raise ValueError(f"{data}: 'tokens' must be non-empty integer ids [T, B] or [T], got "
                             f"{ids.dtype} {ids.shape}")
        if ids.min() < 0 or ids.max() >= V:
            raise ValueError(f"{data}: token ids must lie in [0, {V}), got [{ids.min()}, {ids.max()}]")
        return one_hot_tokens(ids, V), f"{data} ({' x '.join(map(str, ids.shape))} tokens)"
    vocab = graph.metadata.get("config", {}).get("vocab")
    if vocab is None and V != 256:
        raise ValueError(f"the checkpoint records no tokenizer and its vocabulary ({V}) is not "
                         "bytes: pass --data tokens.npz (key 'tokens', int ids [T, B])")
    tok = text.tokenizer_from_dict(vocab) if vocab is not None else text.ByteTokenizer()
    B, T = TOKEN_WINDOWS
    if data is not None:
        try:
            ids = tok.encode(Path(data).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{data}: not a readable UTF-8 text file ({exc})") from None
        source = f"{data} (its first {B} x {T} tokens)"
    else:
        corpus = text.load_shakespeare(tokenizer="byte")
        ids = tok.encode(corpus.tokenizer.decode(corpus.valid[: 4 * B * T]))
        source = f"held-out Shakespeare text of the offline corpus ({B} windows of {T} tokens)"
    if len(ids) < B * T:
        raise ValueError(f"{data}: needs at least {B * T} tokens, has {len(ids)}")
    windows = np.asarray(ids[: B * T], np.int64).reshape(B, T).T  # [T, B], consecutive windows
    if windows.max() >= V:
        raise ValueError(f"token id {int(windows.max())} is outside the model's vocabulary ({V})")
    return one_hot_tokens(windows, V), source


def _operator_note(graph: Any) -> list[str]:
    """The assumption line for a graph with language-model operators (``role == "operator"``):
    they are not priced, and one step is one token."""
    ops: dict[str, int] = {}
    for node in graph.nodes.values():
        if node.role == "operator":
            ops[node.kind] = ops.get(node.kind, 0) + 1
    if not ops:
        return []
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(ops.items()))
    return [f"One step is one token (the input is one-hot tokens), so a sample is a window of "
            f"tokens: divide by the steps for energy per token. The language-model operators "
            f"({kinds}) are not priced: the cost tables have no figures for them (embedding "
            f"lookups, normalisation, exponentials, gates). Only the synapse layers and the neuron "
            f"populations (LIF, EGRU) are; a synapse layer reading real values (a LayerNorm output, "
            f"an EGRU's graded events) does MACs."]


def _deployability_note(graph: Any) -> list[str]:
    """An assumption line naming the hardware targets (``neuro.hardware.TARGETS``) whose
    ``supports()`` refuses this graph: their rows price the counted work as if they could run it."""
    from ..hardware import TARGETS, get_backend

    refused = []
    for name in TARGETS:
        try:
            problems = get_backend(name).supports(graph)
        except (ImportError, ValueError):  # a backend that is not installed or not available
            continue
        if problems:
            refused.append(f"{name} ({len(problems)} problem(s), e.g. {problems[0]})")
    if not refused:
        return []
    return ["This model cannot be exported to " + "; ".join(refused) + ". The rows of those "
            "platforms price the counted operations with their per-event figures as if the model "
            "ran there: a what-if, not a deployable result."]


def load_labels(data: str | Path | None, info: dict[str, Any] | None,
                shape: tuple[int, ...]) -> np.ndarray | None:
    """Class labels ``[B]`` for the data when known: a ``labels`` array in the ``--data`` file, or
    the labels of the checkpoint's own offline task; None otherwise (or when they do not fit)."""
    labels = None
    if data is not None:
        with np.load(data, allow_pickle=False) as f:
            labels = np.asarray(f["labels"]) if "labels" in f.files else None
    elif "delay_pattern_task" in ((info or {}).get("task"), (info or {}).get("data")):
        from ..datasets import delay_pattern_task

        labels = delay_pattern_task(seed=int((info or {})["seed"]) + 1)[1].labels
    batch = shape[1] if len(shape) == 3 else 1
    return labels if labels is not None and labels.shape == (batch,) else None


def model_accuracy(model: Any, x: np.ndarray, labels: np.ndarray | None,
                   info: dict[str, Any] | None = None, batch_size: int = 256) -> dict[str, Any]:
    """``{"value", "samples", "recorded"}``: the model's accuracy on ``x`` (its ``predict``) when
    ``labels`` are known, and the test accuracy training recorded in the checkpoint."""
    import torch

    recorded = (info or {}).get("test_accuracy")
    recorded = recorded[-1] if isinstance(recorded, list) and recorded else recorded
    out: dict[str, Any] = {"value": None, "samples": 0,
                           "recorded": float(recorded) if isinstance(recorded, (int, float)) else None}
    if labels is None or not hasattr(model, "predict"):
        return out
    xb = np.asarray(x, np.float32)
    xb = xb[:, None] if xb.ndim == 2 else xb
    right = 0
    with torch.no_grad():
        for s in range(0, xb.shape[1], batch_size):
            pred = model.predict(torch.from_numpy(xb[:, s:s + batch_size]))
            right += int((pred.numpy() == labels[s:s + batch_size]).sum())
    out.update(value=right / xb.shape[1], samples=int(xb.shape[1]))
    return out


def _split_targets(targets: str | list[str] | None) -> list[str] | None:
    if targets is None:
        return None
    names = [t.strip() for t in targets.split(",")] if isinstance(targets, str) else list(targets)
    return [t for t in names if t]


def _simulator_stats(backend_name: str, graph: Any, x: np.ndarray) -> tuple[dict | None, str]:
    """Run the target's simulator on the same data; ``(stats, note)``, stats None when it cannot."""
    from ..hardware import get_backend

    try:
        backend = get_backend(backend_name)
    except (ValueError, ImportError) as exc:
        return None, f"{backend_name} simulator not used: {exc}"
    missing = [a for a in ("supports", "compile", "run") if not callable(getattr(backend, a, None))]
    if missing:
        return None, (f"{backend_name} simulator not used: neuro.hardware.{backend_name} has no "
                      f"{'/'.join(missing)} (incomplete backend)")
    problems = backend.supports(graph)
    if problems:
        return None, f"{backend_name} simulator cannot run this model ({problems[0]}); reference counts used"
    from ..hardware.base import run_on_target

    try:
        stats = run_on_target(backend, graph, x).stats
    except ValueError as exc:
        return None, f"{backend_name} simulator failed on this input ({str(exc).splitlines()[0]}); reference counts used"
    try:
        check_stats(backend_name, stats)
    except ValueError as exc:
        return None, f"{backend_name} simulator statistics unusable ({exc}); reference counts used"
    return stats, (f"{backend_name} statistics come from the quantized graph run on the {backend_name} "
                   "simulator on the same data; all other counts from the float reference run")


def write_report(graph: Any, x: Any, out: str | Path, *, targets: str | list[str] | None = None,
           costs: str | Path | CostTable | None = None, target_stats: dict[str, Any] | None = None,
           run_simulators: bool = True, progress: bool | None = None, batch_size: int = 64,
           model: dict[str, Any] | None = None, data_source: str = "given array") -> dict[str, Path]:
    """Count ``graph`` on ``x``, estimate the targets and write the report into ``out``.

    ``targets``: names in the cost table (all when None; the baseline is always included).
    ``costs``: a user table (path) merged over the built-in one, or a loaded :class:`CostTable`.
    ``target_stats``: ``{backend: stats}`` (e.g. ``{"spinnaker": Result.stats}``) for the targets
    with that backend; without them and with ``run_simulators``, an installed simulator is run.
    Returns ``{"json": path, "md": path, "html": path}``.
    """
    from ..validate import SPIKE_COUNT_MAX, check_spikes

    n_in = tuple(graph.nodes[graph.inputs()[0]].shape)
    check_spikes(x, f"input data ({data_source})", feature_shape=n_in, max_count=SPIKE_COUNT_MAX)
    table = costs if isinstance(costs, CostTable) else load_cost_table(costs)
    chosen = table.select(_split_targets(targets))
    if table.baseline not in [t.key for t in chosen]:
        chosen.insert(0, table.targets[table.baseline])
    stats_in = dict(target_stats or {})
    for backend, st in stats_in.items():
        check_stats(backend, st)  # unknown backend, missing or bad keys: one line, before the run
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a directory")
    counts = count(graph, x, batch_size=batch_size, progress=progress)
    extra = [f"Input data: {data_source}.",
             "Counts come from the float reference executor (neuro.graph.simulate) on that data."]
    extra += _operator_note(graph) + _deployability_note(graph)
    stats_for: dict[str, dict | None] = {}
    for t in chosen:
        if t.backend is None or t.backend in stats_for:
            continue
        if t.backend in stats_in:
            stats_for[t.backend] = stats_in[t.backend]
            extra.append(f"{t.backend} statistics were given by the caller.")
        elif run_simulators:
            stats_for[t.backend], note = _simulator_stats(t.backend, graph, np.asarray(x))
            extra.append(note + ".")
        else:
            stats_for[t.backend] = None
    energies = [estimate(counts, t, stats_for.get(t.backend) if t.backend else None) for t in chosen]
    model = model or {"checkpoint": None, "model": graph.metadata.get("source", "graph"),
                      "graph_digest": graph.digest(), "dt_s": float(graph.dt)}
    doc = rep.build(counts, energies, table, model=model, data_source=data_source,
                    extra_assumptions=extra,
                    per_token=graph.metadata.get("input") == "one-hot tokens")
    page = rep.html_page(doc, rep.figures(counts, energies, table.baseline,
                                          per_token="per_token" in doc))
    return rep.write(doc, page, out)


def summary(report_json: str | Path) -> list[str]:
    """Console lines for a written report: energy per sample per target and the baseline ratio."""
    import json

    doc = json.loads(Path(report_json).read_text(encoding="utf-8"))
    d = doc["data"]
    lines = [f"energy estimate on {d['source']} ({d['samples']} samples x {d['steps']} steps); "
             f"dynamic energy per sample, compared with {doc['baseline']}:"]
    for key, t in doc["targets"].items():
        ps = t["energy_per_sample_J"]
        static = f" (+{rep.fmt_j(ps['static'])} static)" if ps["static"] else ""
        lines.append(f"  {key:12s} {rep.fmt_j(ps['dynamic']):>10s}{static}  "
                     f"{rep.vs_text(t['vs_baseline']['dynamic_ratio'])}")
    if "per_token" in doc:
        pt = doc["per_token"]
        lines.append(f"per token ({pt['tokens']} tokens): "
                     + ", ".join(f"{k} {rep.fmt_j(t['dynamic_J'])}" for k, t in pt["targets"].items()))
    lines.append(f"report: {Path(report_json).with_name('report.html')}")
    return lines


def run(checkpoint: str | Path, data: str | Path | None, out: str | Path,
        targets: str | list[str] | None = None, progress: bool | None = None, *,
        costs: str | Path | None = None, target_stats: dict[str, Any] | None = None,
        run_simulators: bool = True, batch_size: int = 64) -> dict[str, Path]:
    """``neuro energy CKPT [--data PATH] --out DIR``: load the checkpoint, lower it to the graph IR,
    run it on the data and write ``report.html``, ``report.md`` and ``report.json`` into ``out``."""
    from ..checkpoint import load_checkpoint
    from ..graph import from_module

    table = load_cost_table(costs)
    table.select(_split_targets(targets))  # unknown names fail before the model is loaded
    model, meta = load_checkpoint(checkpoint)
    graph = from_module(model.eval())
    layer_names = getattr(model, "layer_names", None)
    names: dict[str, str] = layer_names() if callable(layer_names) else {}
    names = {k: v for k, v in names.items() if k in graph.nodes}  # layers lowering drops (dropout)
    graph = graph.renamed(names)  # the report names layers as the model does
    x, source = load_data(graph, data, meta.get("info"), f"the model {Path(checkpoint).name}")
    info = {"checkpoint": str(checkpoint), "model": meta["model"], "graph_digest": graph.digest(),
            "layer_names": {v: k for k, v in names.items()},  # report name -> graph node
            "dt_s": float(graph.dt),
            "accuracy": model_accuracy(model, x, None if graph.metadata.get("input") ==
                                       "one-hot tokens" else load_labels(data, meta.get("info"),
                                                                         x.shape),
                                       meta.get("info"))}
    return write_report(graph, x, out, targets=targets, costs=table, target_stats=target_stats,
                  run_simulators=run_simulators, progress=progress, batch_size=batch_size,
                  model=info, data_source=source)


__all__ = ["default_input", "load_data", "load_labels", "model_accuracy", "run", "summary",
           "write_report"]
