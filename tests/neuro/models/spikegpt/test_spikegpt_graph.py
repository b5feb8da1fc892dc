"""SpikeGPT in the graph IR: the float reference executor against the authors' golden data, the
targets' refusals by name, and the energy counts against the model's own operation counter."""
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from neuro.cli import main
from neuro.energy.counting import count
from neuro.graph import Graph, GraphError, from_module, lm_nodes, simulate
from neuro.graph import nodes as N
from neuro.hardware import TARGETS, get_backend
from neuro.models.spikegpt.config import SpikeGPTConfig
from neuro.models.spikegpt.graph import one_hot_tokens
from neuro.models.spikegpt.model import SpikeGPT
from neuro.models.spikegpt.ops import count_ops
from neuro.models.spikegpt.reference import load_reference

FIX = Path(__file__).resolve().parents[3] / "fixtures" / "spikegpt"
LM_KINDS = {"Embedding", "LayerNorm", "TokenShift", "WKV", "Gate", "SquaredReLU", "Add"}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="module")
def reference():
    model = load_reference(FIX / "weights.safetensors").eval()
    return model, from_module(model), load_file(str(FIX / "golden.safetensors"))


def _tm(t):  # golden (B, T, ...) -> time-first
    return t.transpose(0, 1)


@pytest.mark.parametrize("s", (0, 1, 2))
def test_graph_reproduces_the_golden_data(reference, s):
    """The lowered graph on the float executor gives the reference's logits and every spike."""
    model, g, golden = reference
    idx = _tm(golden[f"set{s}.idx"])
    out = simulate(g, one_hot_tokens(idx, model.config.vocab_size), record=True)
    assert float((out["output"] - _tm(golden[f"set{s}.logits"])).abs().max()) < 1e-5
    fired = 0
    for i in range(model.config.n_layer):
        for lif, name in (("lif1", "att"), ("lif2", "ffn")):
            ref = _tm(golden[f"set{s}.L{i}.{name}_spikes"])
            assert torch.equal(out[f"blocks.{i}.{lif}"].to(torch.uint8), ref), (i, name)
            fired += int(ref.sum())
    assert fired > 100  # the golden network is active


def test_seven_block_graph_follows_the_training_mode():
    golden = load_file(str(FIX / "golden_L7C16.safetensors"))
    model = load_reference(FIX / "weights_L7C16.safetensors").eval()
    g = from_module(model)
    for s in (0, 1, 2):
        idx = _tm(golden[f"set{s}.idx"])
        out = simulate(g, one_hot_tokens(idx, model.config.vocab_size), record=True)
        spikes = torch.stack([out[f"blocks.{i}.{n}"] for i in range(7) for n in ("lif1", "lif2")],
                             dim=2)
        assert torch.equal(spikes.to(torch.uint8), _tm(golden[f"set{s}.gpt_spikes"]))
        assert float((out["output"] - _tm(golden[f"set{s}.gpt_logits"])).abs().max()) < 1e-5


def test_graph_structure_names_and_save_load(reference, tmp_path):
    model, g, golden = reference
    kinds = {n.kind for n in g.nodes.values()}
    assert LM_KINDS <= kinds and "LIF" in kinds
    assert g.predecessors("blocks.0.att.wkv") == ["blocks.0.att.key", "blocks.0.att.value"]
    assert g.predecessors("blocks.1.ffn.gate") == ["blocks.1.ffn.receptance", "blocks.1.ffn.value"]
    g2 = Graph.load(g.save(tmp_path / "g"))
    assert g2.equals(g) and g2.digest() == g.digest()
    x = one_hot_tokens(_tm(golden["set0.idx"]), model.config.vocab_size)
    assert torch.equal(simulate(g2, x)["output"], simulate(g, x)["output"])


def test_ports_are_taken_in_edge_order_and_counted():
    x = torch.randn(5, 2, 3)
    base = {"in": N.Input(shape=(3,)), "a": N.Linear(weight=np.eye(3, dtype=np.float32) * 2),
            "g": lm_nodes.Gate(), "out": N.Output()}
    fwd = Graph(base, [("in", "g"), ("a", "g"), ("in", "a"), ("g", "out")]).validate()
    rev = Graph(dict(base), [("a", "g"), ("in", "g"), ("in", "a"), ("g", "out")]).validate()
    assert torch.allclose(simulate(fwd, x)["out"], torch.sigmoid(x) * 2 * x)
    assert torch.allclose(simulate(rev, x)["out"], torch.sigmoid(2 * x) * x)
    with pytest.raises(GraphError, match=r"'g' \(Gate\) takes 2 inputs \(gate, value.*got 1"):
        Graph(base, [("in", "a"), ("a", "g"), ("g", "out")]).validate()


def test_embedding_refuses_input_that_is_not_one_hot(reference):
    model, g, _ = reference
    x = np.zeros((4, 1, model.config.vocab_size), np.float32)
    x[:, 0, :2] = 1
    with pytest.raises(ValueError, match=r"'emb' \(Embedding\): its input must be one-hot"):
        simulate(g, x)


def test_non_spiking_baseline_lowers_without_lif():
    torch.manual_seed(0)
    model = SpikeGPT(SpikeGPTConfig(n_layer=2, n_embd=16, vocab_size=40, spiking=False)).eval()
    with torch.no_grad():  # RWKV's init zeroes several matrices: make every path carry signal
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.3)
    g = from_module(model)
    assert not any(n.kind == "LIF" for n in g.nodes.values())
    idx = torch.randint(0, 40, (24, 3))
    with torch.no_grad():
        logits, _ = model(idx)
    assert torch.allclose(simulate(g, one_hot_tokens(idx, 40))["output"], logits, atol=1e-5)


#: targets without an integer SpikeGPT (fpga has one: tests/hardware/fpga/test_fpga_spikegpt.py)
REFUSING = [t for t in TARGETS if t != "fpga"]


@pytest.mark.parametrize("target", REFUSING)
def test_every_target_names_what_it_cannot_run(reference, target):
    _, g, _ = reference
    problems = get_backend(target).supports(g)
    named = {k for k in LM_KINDS if any(f"({k})" in p for p in problems)}
    assert named == LM_KINDS, problems


def test_fpga_holds_the_graph(reference):
    _, g, _ = reference
    assert get_backend("fpga").supports(g) == []


def _byte_checkpoint(path: Path) -> Path:
    from neuro.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = SpikeGPT(SpikeGPTConfig(n_layer=1, n_embd=16, vocab={"kind": "byte"}))
    return save_checkpoint(path, model, name="spikegpt", config=model.config_dict())


@pytest.mark.parametrize("target", REFUSING)
def test_export_to_any_target_exits_2_and_writes_nothing(tmp_path, capsys, target):
    ckpt = _byte_checkpoint(tmp_path / "m.safetensors")
    assert main(["export", str(ckpt), "--target", target, "--out", str(tmp_path / "art")]) == 2
    err = capsys.readouterr().err
    assert "(WKV)" in err and "nothing written" in err.splitlines()[-1]
    assert not (tmp_path / "art").exists()


def test_energy_counts_equal_the_models_operation_counter(reference):
    """Graph counting (NeuroBench's rules on the lowered graph) and the model's own hook-based
    counter (``ops.count_ops``) are two separate code paths over the same run."""
    model, g, golden = reference
    idx = torch.cat([_tm(golden[f"set{s}.idx"]) for s in (0, 1, 2)], dim=1)  # [16, 6]
    counts = count(g, one_hot_tokens(idx, model.config.vocab_size), progress=False)
    ops = count_ops(model, idx)
    for name, layer in ops.layers.items():
        if name == "residual":
            continue
        syn = counts.synapses[name]
        assert (syn.dense_ops, syn.effective_macs, syn.effective_acs) == (
            layer.dense, layer.macs, layer.acs), name
    spikes = sum(p.events for n, p in counts.populations.items() if n.endswith(("lif1", "lif2")))
    assert spikes == ops.spikes > 0
    assert counts.totals()["effective_acs"] == 0  # every Linear of SpikeGPT reads real values


def test_energy_report_of_a_spikegpt_checkpoint(tmp_path, capsys):
    ckpt = _byte_checkpoint(tmp_path / "m.safetensors")
    text = tmp_path / "t.txt"
    text.write_text("To be, or not to be, that is the question. " * 20)
    out = tmp_path / "rep"
    assert main(["energy", str(ckpt), "--data", str(text), "--out", str(out),
                 "--targets", "ann-45nm,loihi"]) == 0
    md = (out / "report.md").read_text()
    assert "One step is one token" in md and "1 WKV" in md
    assert "This model cannot be exported to loihi (" in md
    short = tmp_path / "short.txt"
    short.write_text("too short")
    assert main(["energy", str(ckpt), "--data", str(short), "--out", str(tmp_path / "r2")]) == 2
    assert "needs at least 512 tokens" in capsys.readouterr().err
