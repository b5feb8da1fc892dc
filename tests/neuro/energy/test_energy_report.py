"""The report: files from a checkpoint run, JSON schema, self-contained HTML, errors before writing."""
import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch

import neuro.hardware
from neuro.checkpoint import save_checkpoint
from neuro.datasets import save_spikes
from neuro.energy import run
from neuro.energy.costs import BUILTIN
from neuro.energy.report import SCHEMA_FILE
from neuro.hardware.base import Result
from neuro.models import DelaySNN, DelaySNNConfig, SpikingMLP, SpikingMLPConfig

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = SpikingMLP(SpikingMLPConfig(layers=[12, 10, 4]))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    d = tmp_path_factory.mktemp("ckpt")
    path = save_checkpoint(d / "m.safetensors", model, name=model.name, config=model.config_dict())
    rng = np.random.default_rng(0)
    data = save_spikes(d / "x.npz", (rng.random((40, 5, 12)) < 0.2).astype(np.uint8))
    return path, data


@pytest.fixture(scope="module")
def written(ckpt, tmp_path_factory):
    path, data = ckpt
    out = tmp_path_factory.mktemp("rep") / "energy"
    return run(path, data, out, progress=False, run_simulators=False)


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.images, self.links, self.headings = [], [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag not in ("img", "meta", "br", "input", "link"):
            self.stack.append(tag)
        if tag == "img":
            self.images.append(a.get("src", ""))
        for k in ("src", "href"):
            if k in a:
                self.links.append(a[k])

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}>"
        self.stack.pop()


def test_report_files_parse(written):
    assert {k: p.name for k, p in written.items()} == {"json": "report.json", "md": "report.md",
                                                       "html": "report.html"}
    doc = json.loads(written["json"].read_text())
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_FILE.read_text()))
    jsonschema.validate(doc, json.loads(SCHEMA_FILE.read_text()), cls=jsonschema.Draft202012Validator)
    assert doc["estimate"] is True and doc["baseline"] == "ann-45nm"
    assert doc["data"]["source"].endswith("x.npz")
    assert (doc["data"]["steps"], doc["data"]["samples"], doc["data"]["input_kind"]) == (40, 5, "spikes")
    assert set(doc["targets"]) == {"ann-45nm", "ann-gpu", "ann-cpu", "snn-45nm", "loihi",
                                   "spinnaker1", "spinnaker2", "fpga"}
    page = written["html"].read_text()
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert parser.stack == []
    # self-contained: embedded images and links within the page (the table of contents)
    assert not [u for u in parser.links if not u.startswith(("data:", "#"))]
    anchors = [u[1:] for u in parser.links if u.startswith("#")]
    assert {"summary", "activity", "assumptions", *doc["targets"]} <= set(anchors)
    assert all(f'id="{a}"' in page for a in anchors)
    assert len(parser.images) == 3 + len(doc["targets"])  # overview, raster, rates, one per target
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)
    assert "Estimate, not a measurement" in page and "Assumptions" in page
    md = written["md"].read_text()
    assert md.startswith("# Energy estimate: spiking-mlp") and "| target | kind |" in md
    for key in doc["targets"]:
        assert f"## {key}:" in md and f'id="{key}"' in page


def test_report_states_assumptions_sources_and_baseline_comparison(written):
    doc = json.loads(written["json"].read_text())
    text = " ".join(doc["assumptions"])
    for phrase in ("estimate", "biases are excluded", "ANN baseline",
                   "hops_per_packet", "Static power", "Input data:", "float reference executor"):
        assert phrase in text
    for t in doc["targets"].values():
        assert all(c["source"] for c in t["constants"].values())
        r = t["vs_baseline"]["dynamic_ratio"]
        base = doc["targets"]["ann-45nm"]["energy_J"]["dynamic"]
        assert r == pytest.approx(t["energy_J"]["dynamic"] / base)
    md = written["md"].read_text()
    assert re.search(r"\| loihi \| event \| reference run \| .* \| [0-9.]+x (less|more) \|", md)
    assert "recalled" in md


def test_console_summary(written):
    from neuro.energy.cli import summary

    lines = summary(written["json"])
    assert lines[0].startswith("energy estimate on ") and lines[-1].endswith("report.html")
    assert len(lines) == 2 + 8 and any(line.split()[0] == "spinnaker1" and "static" in line for line in lines)


def test_sum_of_per_layer_energies_equals_the_total_in_the_json(written):
    doc = json.loads(written["json"].read_text())
    for t in doc["targets"].values():
        layers = sum(v["total"] for v in t["per_layer_J"].values())
        assert layers == pytest.approx(t["energy_J"]["dynamic"], rel=1e-12)
        for v in t["per_layer_J"].values():
            assert v["total"] == pytest.approx(sum(v[c] for c in t["components_J"]), rel=1e-12)
        assert t["energy_J"]["total"] == pytest.approx(t["energy_J"]["dynamic"] + t["energy_J"]["static"])
    counts = doc["counts"]
    assert counts["totals"]["effective_acs"] == sum(s["effective_acs"] for s in counts["synapses"].values())


def test_existing_directory_is_updated_and_targets_can_be_chosen(ckpt, tmp_path):
    path, data = ckpt
    out = tmp_path / "r"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    paths = run(path, data, out, targets="loihi,fpga", progress=False, run_simulators=False)
    doc = json.loads(paths["json"].read_text())
    assert list(doc["targets"]) == ["ann-45nm", "loihi", "fpga"]  # the baseline is always there
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "report.html", "report.json", "report.md"]


@pytest.mark.parametrize("kwargs,match", [
    ({"targets": "loihi,truenorth"}, r"unknown energy target 'truenorth'"),
    ({"data": "missing.npz"}, r"missing.npz: no such file"),
    ({"data": "wrong.npz"}, r"wrong.npz: spikes have 7 channels, the model m.safetensors expects 12"),
    ({"costs": "bad.json"}, r"target 'x': missing field 'costs.hop'"),
    ({"target_stats": {"spinnaker": {"ticks": 1}}}, r"spinnaker statistics: missing key 'packets_sent'"),
    ({"target_stats": {"lava": {}}}, r"no statistics mapping for backend 'lava'"),
])
def test_bad_input_is_a_one_line_error_and_writes_nothing(ckpt, tmp_path, monkeypatch, kwargs, match):
    path, data = ckpt
    monkeypatch.chdir(tmp_path)
    save_spikes("wrong.npz", np.zeros((5, 2, 7), np.uint8))
    entry = json.loads(BUILTIN.read_text())["targets"]["loihi"]
    entry["costs"].pop("hop")
    Path("bad.json").write_text(json.dumps({"targets": {"x": entry}}))
    kw = {"data": data, **kwargs}
    with pytest.raises(ValueError, match=match) as exc:
        run(path, kw.pop("data"), tmp_path / "out", progress=False, run_simulators=False, **kw)
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "out").exists()


def test_output_path_that_is_a_file(ckpt, tmp_path):
    path, data = ckpt
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match=r"exists and is not a directory"):
        run(path, data, tmp_path / "f", progress=False, run_simulators=False)


def test_without_data_the_checkpoints_task_is_used(tmp_path):
    torch.manual_seed(0)
    model = DelaySNN(DelaySNNConfig(n_inputs=16, n_hidden=8, n_layers=1, n_outputs=4, max_delay=9))
    path = save_checkpoint(tmp_path / "d.safetensors", model, name=model.name, config=model.config_dict(),
                           info={"task": "delay_pattern_task", "seed": 3})
    paths = run(path, None, tmp_path / "out", targets="snn-45nm", progress=False, run_simulators=False)
    doc = json.loads(paths["json"].read_text())
    assert doc["data"]["source"].startswith("test split of delay_pattern_task(seed=4)")
    assert doc["data"]["samples"] == 1000 and doc["data"]["steps"] == 30
    assert any(s["kind"] == "DelayedAffine" for s in doc["counts"]["synapses"].values())
    m = SpikingMLP(SpikingMLPConfig(layers=[3, 2]))
    p2 = save_checkpoint(tmp_path / "m.safetensors", m, name=m.name, config=m.config_dict())
    doc2 = json.loads(run(p2, None, tmp_path / "o2", targets="fpga", progress=False,
                          run_simulators=False)["json"].read_text())
    assert doc2["data"]["source"].startswith("random Bernoulli(0.1) spikes, T=100, B=8, seed 0")


class _FakeSpinnaker:
    """A stand-in with the backend protocol, to test the wiring of simulator statistics."""

    name, formats = "spinnaker", ("spinnaker",)
    calls: list = []

    def supports(self, graph, fmt=None):
        return []

    def compile(self, graph, out, *, fmt=None, calibration_inputs=None):
        Path(out).mkdir(parents=True)
        self.calls.append(np.asarray(calibration_inputs).shape)
        return Path(out)

    def run(self, artifact, spikes, **options):
        self.calls.append(np.asarray(spikes).shape)
        return Result({}, {}, {"ticks": 40, "packets_sent": 321, "router_hops": 654,
                               "synaptic_rows_fetched": 300, "synaptic_events": 2500,
                               "dropped_packets": 0, "neuron_updates": 2800, "spikes": 200})


def test_simulator_statistics_are_used_when_the_backend_runs(ckpt, tmp_path, monkeypatch):
    path, data = ckpt
    fake = _FakeSpinnaker()
    monkeypatch.setattr(neuro.hardware, "get_backend", lambda name: fake)
    doc = json.loads(run(path, data, tmp_path / "o", targets="spinnaker1,spinnaker2,loihi",
                         progress=False)["json"].read_text())
    assert fake.calls == [(40, 5, 12), (40, 5, 12)]  # compiled once, run once on the same data
    for key in ("spinnaker1", "spinnaker2"):
        t = doc["targets"][key]
        assert t["count_source"] == "spinnaker simulator statistics"
        assert t["events"]["packets"] == pytest.approx(321) and t["events"]["hops"] == pytest.approx(654)
        assert t["events"]["acs"] + t["events"]["macs"] == pytest.approx(2500)
    assert doc["targets"]["loihi"]["count_source"] == "reference run"
    assert any("quantized graph run on the spinnaker simulator" in a for a in doc["assumptions"])


def test_unusable_simulator_statistics_are_reported_and_not_used(ckpt, tmp_path, monkeypatch):
    path, data = ckpt
    fake = _FakeSpinnaker()
    broken = Result({}, {}, {"ticks": 40})
    monkeypatch.setattr(fake, "run", lambda artifact, spikes, **o: broken)
    monkeypatch.setattr(neuro.hardware, "get_backend", lambda name: fake)
    doc = json.loads(run(path, data, tmp_path / "o", targets="spinnaker1", progress=False)["json"].read_text())
    assert doc["targets"]["spinnaker1"]["count_source"] == "reference run"
    assert any("statistics unusable (spinnaker statistics: missing key 'packets_sent')" in a
               for a in doc["assumptions"])


def test_an_unavailable_simulator_falls_back_to_the_reference_run(ckpt, tmp_path, monkeypatch):
    path, data = ckpt

    def unavailable(name):
        raise ValueError(f"hardware target {name!r} is not available in this release")

    monkeypatch.setattr(neuro.hardware, "get_backend", unavailable)
    doc = json.loads(run(path, data, tmp_path / "o", targets="spinnaker1",
                         progress=False)["json"].read_text())
    t = doc["targets"]["spinnaker1"]
    assert t["count_source"] == "reference run"
    assert any("not available in this release" in a for a in doc["assumptions"])
    assert any("hops estimated" in n for n in t["notes"])
