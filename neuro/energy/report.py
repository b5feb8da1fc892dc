"""The energy report: one JSON document, rendered as Markdown and self-contained HTML.

``report.json`` follows ``report.schema.json`` (JSON Schema 2020-12, next to this module)::

    schema        "neuro.energy.report/1"
    estimate      true (every number is an estimate from per-event figures)
    model         {"checkpoint", "model", "graph_digest", "dt_s"}
    data          {"source", "steps", "samples", "input_kind": "spikes" | "real"}
    assumptions   [str, ...]  every assumption the numbers rest on
    counts        neuro.energy.counting.Counts.as_dict(): totals, per_sample, activation_sparsity,
                  neurobench {SynapticOperations {Effective_MACs, Effective_ACs, Dense} per sample,
                  ActivationSparsity}, synapses {layer: {...}}, populations {name: {...}}
    baseline      the ANN target the others are compared to
    targets       {key: {name, kind, description, origin, count_source, notes,
                         energy_J {dynamic, static, total}, energy_per_sample_J {...},
                         components_J {synaptic_ops, weight_reads, neuron_updates, spikes, hops},
                         events {acs, macs, weight_reads, active_updates, idle_updates, packets, hops},
                         per_layer_J {layer: {component: J, ..., "total": J}},
                         vs_baseline {dynamic_ratio, total_ratio} (null when the baseline is 0),
                         constants {field: {value, unit, si, source, recalled[, note]}}}}
    cost_tables   the table files used (built-in first)

Invariant: for every target, the per-layer totals sum to ``energy_J.dynamic`` and
``total = dynamic + static``. Energies are joules for the whole run; ``*_per_sample`` divides by
the number of samples.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from .costs import CostTable
from .counting import Counts
from .estimate import COMPONENTS, EVENTS, TargetEnergy
from .plots import energy_unit

SCHEMA_ID = "neuro.energy.report/1"
SCHEMA_FILE = Path(__file__).with_name("report.schema.json")

BASE_ASSUMPTIONS = [
    "Every energy here is an estimate: counted events of one run times per-event energy figures "
    "from the cost table (sources listed per number; 'recalled' marks figures not checked against "
    "the primary source). It is not a measurement on hardware.",
    "Synaptic operations follow NeuroBench: per synapse layer, the number of (non-zero input, "
    "non-zero weight) pairs at every step of every sample; biases are excluded. An operation is "
    "an accumulate (AC) when the input vector it reads (one step, one sample) holds only -1/0/1 "
    "spikes, otherwise a multiply-accumulate (MAC). 'Dense' counts every connection at every step.",
    "A synapse with delay d acts on its input d steps later; operations that would fall after the "
    "last step are not counted (the run ends).",
    "Every neuron is updated at every step; a neuron-step is 'active' when its input is non-zero "
    "or its membrane is non-zero after the previous step (CubaLIF: the synaptic current is not "
    "inspected separately; EGRU: every step is active). Only targets with a separate idle figure "
    "(Loihi) price idle steps differently.",
    "Every event (spike) of a population that feeds a synapse layer is one multicast packet, "
    "whatever its fan-out; without a simulator's statistics, router hops are packets x the "
    "target's hops_per_packet (an estimate; no placement is computed).",
    "Weight reads: event-driven targets read one synaptic word per effective operation (zero "
    "weights are not stored); the ANN twin reads every weight once per step and sample.",
    "The ANN baseline is the non-spiking twin of the same architecture run on every step of the "
    "same input: every connection is a MAC at every step and every unit computes one activation "
    "per step. Comparisons with it use dynamic energy.",
    "Static power is charged for the run in real time (steps x dt per sample, samples one after "
    "another) on one chip, and reported apart from dynamic energy.",
    "Per-channel scale/shift nodes (inference-mode BatchNorm) are folded into the preceding "
    "synapse on every target and cost nothing extra; Delay, Flatten, SumPool2d and AvgPool2d "
    "nodes cost nothing beyond the operations of the layers they feed (NeuroBench counts weighted "
    "layers only). A pooled spike map is not binary, so the layer after a pooling node counts "
    "MACs where it reads a sum of several spikes, as NeuroBench decides per input vector.",
]


# ------------------------------------------------------------------------------ document
def build(counts: Counts, energies: list[TargetEnergy], table: CostTable, *, model: dict[str, Any],
          data_source: str, extra_assumptions: list[str] | None = None,
          per_token: bool = False) -> dict[str, Any]:
    """The report document (JSON-able; see the module docstring); ``per_token``: a language
    model's run (one step is one token) also gets the ``per_token`` section."""
    base = next((e for e in energies if e.target.key == table.baseline), None)
    targets = {}
    for e in energies:
        per_layer = {n: {**{k: v for k, v in c.items()}, "total": sum(c.values())}
                     for n, c in e.per_layer.items()}
        b = counts.samples
        ratio = lambda a, z: (a / z) if z else None  # noqa: E731
        targets[e.target.key] = {
            "name": e.target.name, "kind": e.target.kind, "description": e.target.description,
            "origin": e.target.origin, "count_source": e.count_source, "notes": list(e.notes),
            "energy_J": {"dynamic": e.dynamic_J, "static": e.static_J, "total": e.total_J},
            "energy_per_sample_J": {"dynamic": e.dynamic_J / b, "static": e.static_J / b,
                                    "total": e.total_J / b},
            "components_J": e.components_J(),
            "events": e.event_totals(),
            "per_layer_J": per_layer,
            "vs_baseline": {"dynamic_ratio": ratio(e.dynamic_J, base.dynamic_J if base else 0.0),
                            "total_ratio": ratio(e.total_J, base.total_J if base else 0.0)},
            "constants": {**{k: c.as_dict() for k, c in e.target.costs.items()},
                          **{k: c.as_dict() for k, c in e.target.assumptions.items()}},
        }
    from .. import __version__

    doc = {
        "schema": SCHEMA_ID, "estimate": True, "neuro_version": __version__,
        "model": model,
        "data": {"source": data_source, "steps": counts.steps, "samples": counts.samples,
                 "input_kind": counts.input_kind},
        "assumptions": BASE_ASSUMPTIONS + list(extra_assumptions or []),
        "counts": counts.as_dict(),
        "baseline": table.baseline if base is not None else None,
        "targets": targets,
        "cost_tables": list(table.sources),
    }
    if per_token:
        doc["per_token"] = token_section(counts, energies)
    return doc


def token_section(counts: Counts, energies: list[TargetEnergy]) -> dict[str, Any]:
    """Per-token figures of a language model's run (``n = steps x samples`` tokens): per target
    the energy and its synaptic operations and packets, per synapse layer the dense and effective
    operations and the weight sparsity, per population the activity and packets."""
    n = counts.steps * counts.samples
    tg = {}
    for e in energies:
        ev = e.event_totals()
        tg[e.target.key] = {"dynamic_J": e.dynamic_J / n, "static_J": e.static_J / n,
                            "total_J": e.total_J / n, "synaptic_ops": (ev["acs"] + ev["macs"]) / n,
                            "packets": ev["packets"] / n}
    layers = {name: {"dense_ops": s.dense_ops / n, "effective_macs": s.effective_macs / n,
                     "effective_acs": s.effective_acs / n,
                     "weight_sparsity": 1.0 - s.n_nonzero_weights / max(s.n_weights, 1)}
              for name, s in counts.synapses.items()}
    pops = {name: {"activity": p.rate, "activity_sparsity": 1.0 - p.rate, "events": p.events / n,
                   "packets": p.packets / n}
            for name, p in counts.populations.items() if not p.is_input}
    return {"tokens": n, "targets": tg, "layers": layers, "populations": pops}


TOKEN_TARGET_HEAD = ["target", "energy / token", "synaptic ops / token", "packets / token"]
TOKEN_LAYER_HEAD = ["layer", "dense ops / token", "effective MACs / token", "effective ACs / token",
                    "weight sparsity"]
TOKEN_POP_HEAD = ["population", "activity", "activity sparsity", "packets / token"]


def _token_rows(doc: dict[str, Any]) -> list[tuple[list[str], list[list[str]]]]:
    pt = doc["per_token"]
    return [
        (TOKEN_TARGET_HEAD, [[k, fmt_j(t["dynamic_J"]) + (f" (+{fmt_j(t['static_J'])} static)"
                                                          if t["static_J"] else ""),
                              fmt_n(t["synaptic_ops"]), fmt_n(t["packets"])]
                             for k, t in pt["targets"].items()]),
        (TOKEN_LAYER_HEAD, [[k, fmt_n(v["dense_ops"]), fmt_n(v["effective_macs"]),
                             fmt_n(v["effective_acs"]), f"{v['weight_sparsity']:.3f}"]
                            for k, v in pt["layers"].items()]),
        (TOKEN_POP_HEAD, [[k, f"{v['activity']:.4f}", f"{v['activity_sparsity']:.4f}",
                           fmt_n(v["packets"])] for k, v in pt["populations"].items()])]


TOKEN_INTRO = ("One step is one token: every figure below is divided by the {n} tokens of the run. "
               "Synaptic operations per target are those it is priced for (the ANN twins: every "
               "connection every step; event targets: effective operations, or the simulator's "
               "synaptic events).")


# ------------------------------------------------------------------------------ formatting
def fmt_j(v: float) -> str:
    if v == 0:
        return "0 J"
    scale, unit = energy_unit(v)
    return f"{v / scale:.3g} {unit}"


def fmt_n(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() or abs(v) >= 100 else f"{v:,.2f}"


def vs_text(r: float | None, baseline: str | None = None) -> str:
    """``"3.9x less"`` (or ``"... than `baseline`"`` when it is named); n/a without a baseline."""
    if r is None:
        return "n/a (no baseline energy)"
    text = "the same" if r == 1 else f"{1 / r:.3g}x less" if r < 1 else f"{r:.3g}x more"
    if baseline is None:
        return text
    return f"{text} than `{baseline}`" if r != 1 else f"{text} as `{baseline}`"


def _summary_rows(doc: dict[str, Any]) -> list[list[str]]:
    rows = []
    for key, t in doc["targets"].items():
        ps = t["energy_per_sample_J"]
        rows.append([key, t["kind"], t["count_source"], fmt_j(ps["dynamic"]), fmt_j(ps["static"]),
                     fmt_j(ps["total"]), vs_text(t["vs_baseline"]["dynamic_ratio"])])
    return rows


SUMMARY_HEAD = ["target", "kind", "counts from", "dynamic / sample", "static / sample",
                "total / sample", "dynamic vs baseline"]
SYN_HEAD = ["layer", "kind", "weights (non-zero)", "input events", "effective ACs", "effective MACs",
            "dense ops", "ACs / sample"]
POP_HEAD = ["population", "kind", "neurons", "updates (active)", "events", "packets",
            "rate / step", "rate (Hz)"]
CONST_HEAD = ["field", "value", "source", "recalled"]


def _syn_rows(doc: dict[str, Any]) -> list[list[str]]:
    b = doc["data"]["samples"]
    return [[n, s["kind"], f"{s['n_weights']:,} ({s['n_nonzero_weights']:,})", fmt_n(s["input_events"]),
             fmt_n(s["effective_acs"]), fmt_n(s["effective_macs"]), fmt_n(s["dense_ops"]),
             fmt_n(s["effective_acs"] / b)] for n, s in doc["counts"]["synapses"].items()]


def _pop_rows(doc: dict[str, Any]) -> list[list[str]]:
    return [[n, p["kind"], fmt_n(p["neurons"]), f"{fmt_n(p['updates'])} ({fmt_n(p['active_updates'])})",
             fmt_n(p["events"]), fmt_n(p["packets"]),
             f"{p['rate_per_step']:.4f}" if p["spiking"] else "-",
             f"{p['rate_hz']:.1f}" if p["spiking"] else "-"]
            for n, p in doc["counts"]["populations"].items()]


def _const_rows(t: dict[str, Any]) -> list[list[str]]:
    return [[k, f"{c['value']:g} {c['unit']}", c["source"], "recalled" if c["recalled"] else "no"]
            for k, c in t["constants"].items()]


def _layer_rows(t: dict[str, Any], samples: int) -> list[list[str]]:
    rows = [[n] + [fmt_j(c[k] / samples) for k in (*COMPONENTS, "total")]
            for n, c in t["per_layer_J"].items()]
    comps = t["components_J"]
    rows.append(["**all layers**"] + [fmt_j(comps[k] / samples) for k in COMPONENTS]
                + [fmt_j(t["energy_per_sample_J"]["dynamic"])])
    return rows


def _nb_rows(doc: dict[str, Any]) -> list[list[str]]:
    nb = doc["counts"]["neurobench"]
    so = nb["SynapticOperations"]
    return [["Effective_ACs (per sample)", fmt_n(so["Effective_ACs"])],
            ["Effective_MACs (per sample)", fmt_n(so["Effective_MACs"])],
            ["Dense (per sample)", fmt_n(so["Dense"])],
            ["ActivationSparsity", f"{nb['ActivationSparsity']:.4f}"]]


# ------------------------------------------------------------------------------ markdown
def _md_table(head: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(esc, head)) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(lines)


def accuracy_text(model: dict[str, Any]) -> str:
    """One line on how well the model does on the data (measured when the data has labels, else
    what training recorded, else said to be unknown)."""
    acc = model.get("accuracy")
    if acc and acc.get("value") is not None:
        return (f"accuracy of the float model on this data: {acc['value']:.3f} "
                f"({acc['samples']} labelled samples)")
    recorded = (acc or {}).get("recorded")
    if recorded is not None:
        return (f"accuracy: not measured on this data (no labels); training recorded a test "
                f"accuracy of {recorded:.3f}")
    return "accuracy: unknown (the data has no labels and the checkpoint records none)"


def names_text(m: dict[str, Any]) -> str:
    """The line saying how layers are named ("" when the graph's node names are used as they are)."""
    names = m.get("layer_names") or {}
    if not names:
        return ""
    pairs = ", ".join(f"{k} = {v}" for k, v in names.items())
    return f"layers named as the model names them (graph node in the checkpoint's lowering: {pairs})"


def markdown(doc: dict[str, Any]) -> str:
    m, d, b = doc["model"], doc["data"], doc["data"]["samples"]
    out = [f"# Energy estimate: {m.get('model')}", "",
           "**Estimate, not a measurement.** Figures and plots: `report.html`; data: `report.json`.", "",
           f"- checkpoint: `{m.get('checkpoint')}`, graph digest `{str(m.get('graph_digest'))[:16]}`",
           f"- data: {d['source']}: {d['samples']} samples x {d['steps']} steps of {m.get('dt_s'):g} s, "
           f"{d['input_kind']} input",
           f"- {accuracy_text(m)}",
           *([f"- {names_text(m)}"] if names_text(m) else []),
           f"- baseline: `{doc['baseline']}`", "",
           "## Energy per target", "", _md_table(SUMMARY_HEAD, _summary_rows(doc)), "",
           "## Activity (one run on the data)", "", _md_table(SYN_HEAD, _syn_rows(doc)), "",
           _md_table(POP_HEAD, _pop_rows(doc)), "",
           "NeuroBench metrics of this run:", "", _md_table(["metric", "value"], _nb_rows(doc)), ""]
    if "per_token" in doc:
        out += ["## Per token (language model)", "",
                TOKEN_INTRO.format(n=f"{doc['per_token']['tokens']:,}"), ""]
        for head, rows in _token_rows(doc):
            out += [_md_table(head, rows), ""]
    for key, t in doc["targets"].items():
        out += [f"## {key}: {t['name']}", "", t["description"], "",
                f"Counts from: {t['count_source']}. Dynamic energy per sample "
                f"{fmt_j(t['energy_per_sample_J']['dynamic'])} "
                f"({vs_text(t['vs_baseline']['dynamic_ratio'], doc['baseline'])}).", ""]
        out += [f"- {n}" for n in t["notes"]] + ([""] if t["notes"] else [])
        out += [_md_table(["layer", *COMPONENTS, "total"], _layer_rows(t, b)), "",
                _md_table(CONST_HEAD, _const_rows(t)), ""]
    out += ["## Assumptions", ""] + [f"- {a}" for a in doc["assumptions"]] + [""]
    return "\n".join(out)


# ------------------------------------------------------------------------------ html
_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left}
th{background:#f0f0f0}.warn{background:#fff6d6;border:1px solid #e0c060;padding:.5em}img{max-width:100%}
.recalled{color:#a05000}nav{background:#f7f7f7;border:1px solid #ddd;padding:.3em 1em;display:inline-block}
nav ul{margin:.2em 0;padding-left:1.2em}"""


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    e = html.escape
    h = "".join(f"<th>{e(str(c))}</th>" for c in head)
    body = "".join("<tr>" + "".join(
        f"<td class=\"recalled\">{e(str(c))}</td>" if c == "recalled" else
        f"<td><b>{e(str(c).strip('*'))}</b></td>" if str(c).startswith("**") else f"<td>{e(str(c))}</td>"
        for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _toc(doc: dict[str, Any]) -> str:
    """The page's table of contents: its sections, one link per target."""
    e = html.escape
    items = ['<li><a href="#summary">Energy per target</a></li>',
             '<li><a href="#activity">Activity: raster, rates, counts</a></li>',
             "<li>Targets: " + ", ".join(f'<a href="#{e(k)}">{e(k)}</a>' for k in doc["targets"])
             + "</li>", '<li><a href="#assumptions">Assumptions</a></li>']
    return "<nav><b>Contents</b><ul>" + "".join(items) + "</ul></nav>"


def html_page(doc: dict[str, Any], figures: dict[str, bytes]) -> str:
    """A self-contained page: inline CSS, plots embedded as base64 PNG, no external reference."""
    e, m, d, b = html.escape, doc["model"], doc["data"], doc["data"]["samples"]
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>Energy estimate: {e(str(m.get('model')))}</title><style>{_CSS}</style></head><body>",
             f"<h1>Energy estimate: {e(str(m.get('model')))}</h1>",
             "<p class=\"warn\"><b>Estimate, not a measurement.</b> Counted events of one run times "
             "per-event energies from the cost table; every constant is listed with its source, and "
             "figures marked <span class=\"recalled\">recalled</span> were not checked against the "
             "primary source. All assumptions are listed at the end.</p>",
             f"<p>checkpoint <code>{e(str(m.get('checkpoint')))}</code>, graph digest "
             f"<code>{e(str(m.get('graph_digest'))[:16])}</code><br>data: {e(d['source'])}: "
             f"{d['samples']} samples x {d['steps']} steps of {m.get('dt_s'):g} s, {e(d['input_kind'])} "
             f"input<br>{e(accuracy_text(m))}<br>"
             + (f"{e(names_text(m))}<br>" if names_text(m) else "")
             + f"baseline: <code>{e(str(doc['baseline']))}</code></p>",
             _toc(doc),
             "<h2 id=\"summary\">Energy per target</h2>", _html_table(SUMMARY_HEAD, _summary_rows(doc)),
             _img(figures["overview"], "energy per target"),
             "<h2 id=\"activity\">Activity (one run on the data)</h2>",
             _img(figures["raster"], "spike raster"),
             _img(figures["rates"], "spike rate per population"),
             _html_table(SYN_HEAD, _syn_rows(doc)), _html_table(POP_HEAD, _pop_rows(doc)),
             "<p>NeuroBench metrics of this run:</p>", _html_table(["metric", "value"], _nb_rows(doc))]
    if "per_token" in doc:
        n_tok = f"{doc['per_token']['tokens']:,}"
        parts += ["<h2 id=\"per-token\">Per token (language model)</h2>",
                  f"<p>{e(TOKEN_INTRO.format(n=n_tok))}</p>"]
        if "per_token" in figures:
            parts.append(_img(figures["per_token"], "energy per token per target"))
        if "sparsity" in figures:
            parts.append(_img(figures["sparsity"], "weight and activity sparsity per layer"))
        parts += [_html_table(head, rows) for head, rows in _token_rows(doc)]
    for key, t in doc["targets"].items():
        parts += [f"<h2 id=\"{e(key)}\">{e(key)}: {e(t['name'])}</h2>", f"<p>{e(t['description'])}</p>",
                  f"<p>Counts from: {e(t['count_source'])}. Dynamic energy per sample "
                  f"<b>{e(fmt_j(t['energy_per_sample_J']['dynamic']))}</b> "
                  f"({e(vs_text(t['vs_baseline']['dynamic_ratio'], doc['baseline']).replace('`', ''))}).</p>"]
        if t["notes"]:
            parts.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in t["notes"]) + "</ul>")
        parts += [_img(figures[f"breakdown:{key}"], f"energy breakdown {key}"),
                  _html_table(["layer", *COMPONENTS, "total"], _layer_rows(t, b)),
                  _html_table(CONST_HEAD, _const_rows(t))]
    parts += ["<h2 id=\"assumptions\">Assumptions</h2><ul>" + "".join(f"<li>{e(a)}</li>" for a in doc["assumptions"])
              + "</ul>", f"<p>Cost tables: {e(', '.join(doc['cost_tables']))}. neuro "
              f"{e(doc['neuro_version'])}.</p></body></html>"]
    return "\n".join(parts)


def figures(counts: Counts, energies: list[TargetEnergy], baseline: str,
            per_token: bool = False) -> dict[str, bytes]:
    """The report's plots; ``per_token`` (a language model) adds ``"per_token"`` (energy per
    token per target) and ``"sparsity"`` (weight and activity sparsity per layer)."""
    from . import plots

    figs = {"raster": plots.raster(counts), "rates": plots.rates(counts),
            "overview": plots.overview(energies, baseline, counts.samples)}
    if per_token:
        figs["per_token"] = plots.overview(energies, baseline, counts.steps * counts.samples,
                                           unit="token")
        figs["sparsity"] = plots.sparsity(counts)
    kinds = {**{n: s.kind for n, s in counts.synapses.items()},
             **{n: p.kind for n, p in counts.populations.items()}}
    for en in energies:
        figs[f"breakdown:{en.target.key}"] = plots.breakdown(en, counts.samples, kinds)
    return figs


# ------------------------------------------------------------------------------ files
def write(doc: dict[str, Any], page: str, out: str | Path) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``report.html`` into ``out``: a new directory is
    filled under a temporary name and renamed into place; in an existing one every file is
    written to a temporary name and renamed (nothing partial either way)."""
    from ..atomic import atomic_dir, atomic_write

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a directory")
    texts = {"json": ("report.json", json.dumps(doc, indent=1, allow_nan=False)),
             "md": ("report.md", markdown(doc)), "html": ("report.html", page)}
    if out.is_dir():
        for fname, text in texts.values():
            def write_text(tmp: str, text: str = text) -> int:
                return Path(tmp).write_text(text, encoding="utf-8")
            atomic_write(out / fname, write_text)
    else:
        with atomic_dir(out) as tmp:
            for fname, text in texts.values():
                (tmp / fname).write_text(text, encoding="utf-8")
    return {k: out / fname for k, (fname, _) in texts.items()}


__all__ = ["BASE_ASSUMPTIONS", "EVENTS", "SCHEMA_FILE", "SCHEMA_ID", "build", "figures", "html_page",
           "markdown", "write"]
