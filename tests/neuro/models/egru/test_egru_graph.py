"""The EGRU language model in the graph IR: the float reference executor gives the model's
logits; targets name what they cannot run; the energy report reads word ids."""
import numpy as np
import pytest
import torch

from neuro.checkpoint import save_checkpoint
from neuro.cli import main
from neuro.graph import GraphError, from_module, simulate
from neuro.hardware import TARGETS, get_backend
from neuro.models.egru.config import EGRUGestureConfig, EGRULMConfig
from neuro.models.egru.model import EGRUGestureNet, EGRULanguageModel
from neuro.models.spikegpt.graph import one_hot_tokens


def _lm(seed: int = 0) -> EGRULanguageModel:
    torch.manual_seed(seed)
    model = EGRULanguageModel(EGRULMConfig(vocab_size=50, emb_dim=16, hidden_sizes=[24, 16],
                                           thr_mean=0.1)).eval()
    with torch.no_grad():  # inputs strong enough for the units to emit
        for layer in model.layers:
            layer.kernel.mul_(3)
    return model


def test_lm_graph_equals_the_model():
    model = _lm()
    g = from_module(model)
    assert [n.kind for n in g.nodes.values()] == ["Input", "Embedding", "EGRU", "EGRU", "Affine",
                                                  "Output"]
    idx = torch.randint(0, 50, (40, 3), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits, _ = model(idx)
    out = simulate(g, one_hot_tokens(idx, 50), record=True)
    assert torch.equal(out["output"], logits)
    for layer in ("layers.0", "layers.1"):
        rate = float((out[layer] != 0).float().mean())
        assert 0.05 < rate < 0.95, (layer, rate)  # graded events, neither silent nor saturated


def test_gesture_network_does_not_lower():
    with pytest.raises(GraphError, match="cannot tell the model's input size|cannot lower"):
        from_module(EGRUGestureNet(EGRUGestureConfig()).eval())


@pytest.mark.parametrize("target", list(TARGETS))
def test_targets_run_the_lm_or_name_the_embedding_they_cannot_run(target):
    problems = get_backend(target).supports(from_module(_lm()))
    if target in ("spinnaker", "fpga"):  # integer embedding and decoder (egru_lm_int)
        assert problems == []
        return
    assert any("(Embedding)" in p for p in problems), problems
    if target == "loihi":  # the reason, not only the name
        assert any("(EGRU)" in p and "multiply" in p and "graded payload" in p for p in problems)


def test_energy_report_of_an_egru_lm_from_word_ids(tmp_path, capsys):
    model = _lm()
    ckpt = save_checkpoint(tmp_path / "m.safetensors", model, name=model.name,
                           config=model.config_dict())
    tokens = np.random.default_rng(0).integers(0, 50, (30, 2))
    np.savez(tmp_path / "tokens.npz", tokens=tokens)
    out = tmp_path / "rep"
    assert main(["energy", str(ckpt), "--data", str(tmp_path / "tokens.npz"), "--out", str(out),
                 "--targets", "ann-45nm,spinnaker2"]) == 0
    md = (out / "report.md").read_text()
    assert "30 x 2 tokens" in md and "layers.0:recurrent" in md
    assert "## Per token (language model)" in md and "divided by the 60 tokens" in md
    import json

    pt = json.loads((out / "report.json").read_text())["per_token"]
    assert pt["tokens"] == 60 and set(pt["targets"]) >= {"ann-45nm", "spinnaker2"}
    assert pt["layers"]["decoder"]["dense_ops"] == 50 * 16  # V x H per token
    assert pt["populations"]["layers.0"]["activity"] + pt["populations"]["layers.0"][
        "activity_sparsity"] == 1.0
    assert "per token (60 tokens)" in capsys.readouterr().out
    page = (out / "report.html").read_text()
    assert 'alt="energy per token per target"' in page and 'alt="weight and activity sparsity' in page
    assert main(["energy", str(ckpt), "--out", str(tmp_path / "r2")]) == 2
    assert "pass --data tokens.npz" in capsys.readouterr().err
    np.savez(tmp_path / "bad.npz", tokens=tokens + 100)
    assert main(["energy", str(ckpt), "--data", str(tmp_path / "bad.npz"), "--out",
                 str(tmp_path / "r3")]) == 2
    assert "token ids must lie in [0, 50)" in capsys.readouterr().err
