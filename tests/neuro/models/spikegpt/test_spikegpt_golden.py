"""SpikeGPT against the golden data of the authors' code (tests/fixtures/spikegpt/README.md).

Tolerances are the README's: fp32 spikes exactly equal; logits, block_out, loss 1e-5 absolute;
att_k/att_v/att_wkv/att_in 1e-5 relative to the tensor's max; gradients 1e-4 relative; fp64 1e-10.
"""
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from neuro.models.spikegpt.model import SpikeGPT, spikegpt_lif
from neuro.models.spikegpt.reference import infer_config, load_reference, read_state_dict

FIX = Path(__file__).resolve().parents[3] / "fixtures" / "spikegpt"
SETS = (0, 1, 2)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # tiny tensors: threads only add wake-up latency
    yield


@pytest.fixture(scope="module")
def golden():
    return load_file(str(FIX / "golden.safetensors"))


def _model(dtype=torch.float32) -> SpikeGPT:
    return load_reference(FIX / "weights.safetensors").to(dtype).eval()


def _tm(t):  # golden (B, T, ...) -> time-first
    return t.transpose(0, 1)


def _rel(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


@pytest.mark.parametrize("s", SETS)
def test_forward_matches_reference_fp32(golden, s):
    p = f"set{s}."
    model = _model()
    probe = {}
    with torch.no_grad():
        logits, _ = model(_tm(golden[p + "idx"]), probe=probe)
    assert len(probe) == 2 + 10 * 2
    for name, got in probe.items():
        ref = _tm(golden[p + name])
        if ref.dtype == torch.uint8:  # every spike (embedding and LIF) equal
            assert torch.equal(got.to(torch.uint8), ref), name
        elif name.endswith("block_out") or name == "ln0_out":
            assert float((got - ref).abs().max()) < 1e-5, name
        else:
            assert _rel(got, ref) < 1e-5, name
    assert float((logits - _tm(golden[p + "logits"])).abs().max()) < 1e-5


@pytest.mark.parametrize("s", SETS)
def test_loss_and_all_gradients_match_reference_fp32(golden, s):
    p = f"set{s}."
    model = _model()
    loss, _, _ = model.loss(_tm(golden[p + "idx"]), _tm(golden[p + "targets"]))
    assert abs(float(loss.detach()) - float(golden[p + "loss"])) < 1e-5
    loss.backward()
    params = dict(model.named_parameters())
    assert len(params) == 42
    for name, prm in params.items():
        assert _rel(prm.grad, golden[p + "grad." + name]) < 1e-4, name


def test_l2wrap_is_the_only_difference_from_cross_entropy(golden):
    p = "set0."
    model = _model()
    model.config.l2wrap = False
    loss, _, _ = model.loss(_tm(golden[p + "idx"]), _tm(golden[p + "targets"]))
    loss.backward()
    for name in ("blocks.0.att.time_decay", "blocks.0.att.time_first", "head.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert _rel(grad, golden[p + "grad_ce." + name]) < 1e-4, name
        assert _rel(grad, golden[p + "grad." + name]) > 1e-6, name  # L2Wrap does change it


@pytest.mark.parametrize("s", SETS)
def test_fp64_matches_reference_fp64(golden, s):
    p = f"set{s}."
    model = _model(torch.float64)
    loss, logits, _ = model.loss(_tm(golden[p + "idx"]), _tm(golden[p + "targets"]))
    assert float((logits.detach() - _tm(golden[p + "logits_fp64"])).abs().max()) < 1e-10
    assert abs(float(loss.detach()) - float(golden[p + "loss_fp64"])) < 1e-10
    loss.backward()
    params = dict(model.named_parameters())
    for name in ("blocks.0.att.time_decay", "blocks.0.att.time_first", "head.weight"):
        assert _rel(params[name].grad, golden[p + "grad_fp64." + name]) < 1e-10, name


@pytest.mark.parametrize("s", SETS)
def test_streaming_matches_reference_rnn_mode(golden, s):
    p = f"set{s}."
    model = _model()
    idx = _tm(golden[p + "idx"])
    state, out = None, []
    with torch.no_grad():
        for t in range(idx.shape[0]):
            logits, state = model.step(idx[t], state)
            out.append(logits)
    assert float((torch.stack(out) - _tm(golden[p + "rnn_logits"])).abs().max()) < 1e-5


def test_seven_layers_follow_gpt_mode_not_the_rnn_rescaling():
    g = load_file(str(FIX / "golden_L7C16.safetensors"))
    model = load_reference(FIX / "weights_L7C16.safetensors").eval()
    assert model.config.n_layer == 7 and model.config.n_embd == 16
    for s in SETS:
        p = f"set{s}."
        idx = _tm(g[p + "idx"])
        probe = {}
        with torch.no_grad():
            logits, _ = model(idx, probe=probe)
            state, out = None, []
            for t in range(idx.shape[0]):
                lt, state = model.step(idx[t], state)
                out.append(lt)
        spikes = torch.stack([probe[f"L{i}.{n}_spikes"] for i in range(7) for n in ("att", "ffn")],
                             dim=2)  # [T, B, 14, C]
        assert torch.equal(spikes.to(torch.uint8), _tm(g[p + "gpt_spikes"]))
        assert float((logits - _tm(g[p + "gpt_logits"])).abs().max()) < 1e-5
        stream = torch.stack(out)
        assert float((stream - _tm(g[p + "rnn_logits_no_rescale"])).abs().max()) < 1e-5
        assert float((stream - _tm(g[p + "rnn_logits"])).abs().max()) > 0.1  # the quirk


def test_lif_unit_vectors(golden):
    x = golden["lif.x"].clone().requires_grad_()  # [T, N1, N2], fp64
    lif = spikegpt_lif()
    s, st = lif(x, record=True)
    assert torch.equal(s.detach().to(torch.uint8), golden["lif.spikes"])
    assert float((st.v - golden["lif.v_after_reset"]).abs().max()) < 1e-12
    (s * golden["lif.g_spikes"]).sum().backward()
    assert float((x.grad - golden["lif.g_x"]).abs().max()) < 1e-12


def test_reference_file_formats(tmp_path):
    sd = read_state_dict(FIX / "weights.safetensors")
    torch.save(sd, tmp_path / "w.pth")
    again = read_state_dict(tmp_path / "w.pth")
    assert sorted(again) == sorted(sd)
    cfg = infer_config(sd)
    assert (cfg.vocab_size, cfg.n_layer, cfg.n_embd, cfg.ffn_mult) == (77, 2, 32, 4)
    assert cfg.n_params() == 32384 == sum(t.numel() for t in sd.values())
    bad = dict(sd)
    bad["blocks.0.att.key.weight"] = torch.zeros(3, 3)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="blocks.0.att.key.weight"):
        load_reference(tmp_path / "bad.pth")
    del bad["head.weight"]
    torch.save(bad, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="head.weight"):
        load_reference(tmp_path / "missing.pth")
    (tmp_path / "code.pth").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="code.pth"):
        read_state_dict(tmp_path / "code.pth")
