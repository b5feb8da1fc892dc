"""SpikeGPT model: two modes with one set of weights, generation, config, input checks."""
import json
from pathlib import Path

import pytest
import torch

from neuro.models.spikegpt import FAMILY
from neuro.models.spikegpt.config import SpikeGPTConfig
from neuro.models.spikegpt.model import SpikeGPT
from neuro.models.spikegpt.reference import load_reference

FIX = Path(__file__).resolve().parents[3] / "fixtures" / "spikegpt"


@pytest.fixture(autouse=True)
def _one_thread():
    """Token-by-token runs are thousands of tiny ops: one thread avoids OpenMP wake-up costs
    (10x faster on the shared 2-core machine). Runs after the root conftest's set_num_threads."""
    torch.set_num_threads(1)
    yield


def _spiking_model(seed=0) -> SpikeGPT:
    """The golden weights (V=77, 2 x 32), whose LIF units fire 20-36 % of the time."""
    return load_reference(FIX / "weights.safetensors").eval()


def _random_model(seed=1, n_embd=24, **kw) -> SpikeGPT:
    """A 3-block model with random (non-RWKV-init) weights scaled so the LIFs fire."""
    torch.manual_seed(seed)
    cfg = SpikeGPTConfig(vocab_size=50, n_layer=3, n_embd=n_embd, ctx_len=64, **kw)
    model = SpikeGPT(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".weight") and p.dim() == 2:
                p.normal_(0, 1 / p.shape[1] ** 0.5)
        for block in model.blocks:
            block.att.key.weight.mul_(3)
            block.att.output.weight.mul_(20)
            block.ffn.value.weight.mul_(40)
        model.emb.weight.normal_()
    return model


def _stream(model, idx):
    state, logits, spikes = None, [], []
    for t in range(idx.shape[0]):
        probe = {}
        with torch.no_grad():
            out, state = model(idx[t : t + 1], state, probe=probe)
        logits.append(out[0])
        spikes.append(torch.cat([v for k, v in probe.items() if k.endswith("_spikes")], -1)[0])
    return torch.stack(logits), torch.stack(spikes), state


@pytest.mark.parametrize("make, T", [(_spiking_model, 512), (_random_model, 512)])
def test_streaming_equals_parallel_over_512_tokens(make, T):
    model = make()
    B = 2
    idx = torch.randint(0, model.config.vocab_size, (T, B), generator=torch.Generator().manual_seed(3))
    probe = {}
    with torch.no_grad():
        par, pstate = model(idx, probe=probe)
    pspikes = torch.cat([v for k, v in probe.items() if k.endswith("_spikes")], -1)
    slog, sspikes, sstate = _stream(model, idx)
    rate = float(pspikes[..., model.config.n_embd:].mean())  # LIF spikes (not the embedding)
    assert 0.05 < rate < 0.6, rate  # the comparison means something
    assert torch.equal(sspikes, pspikes)
    assert float((slog - par).abs().max()) < 1e-4
    for a, b in zip(pstate.blocks, sstate.blocks):
        torch.testing.assert_close(a.att_v, b.att_v, rtol=0, atol=1e-5)
        torch.testing.assert_close(a.wkv.a, b.wkv.a, rtol=1e-4, atol=1e-5)


def test_step_api_equals_forward():
    model = _spiking_model()
    idx = torch.randint(0, 77, (12, 3))
    with torch.no_grad():
        par, _ = model(idx)
        state, outs = None, []
        for t in range(12):
            out, state = model.step(idx[t], state)
            outs.append(out)
    assert float((torch.stack(outs) - par).abs().max()) < 1e-4


def test_state_carries_membranes_and_shift():
    """A chunk continued from a state differs from the same chunk started fresh."""
    model = _spiking_model()
    idx = torch.randint(0, 77, (32, 2))
    with torch.no_grad():
        _, state = model(idx[:16])
        cont, _ = model(idx[16:], state)
        fresh, _ = model(idx[16:])
        whole, _ = model(idx)
    assert float((cont - whole[16:]).abs().max()) < 1e-5
    assert float((fresh - whole[16:]).abs().max()) > 1e-2


def test_state_detach():
    model = _spiking_model()
    _, state = model(torch.randint(0, 77, (4, 2)))
    assert state.blocks[0].att_shift.requires_grad
    cut = state.detach()
    assert not any(t.requires_grad for b in cut.blocks for t in (b.att_shift, b.att_v, b.ffn_v))
    with torch.no_grad():
        a, _ = model(torch.tensor([[3, 4]]), state)
        b, _ = model(torch.tensor([[3, 4]]), cut)
    assert torch.equal(a, b)


def test_batch_rows_are_independent():
    model = _spiking_model()
    idx = torch.randint(0, 77, (40, 4))
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(idx[:, perm])
    torch.testing.assert_close(a[:, perm], b)


def test_generate_is_deterministic_for_a_seed():
    model = _random_model()
    a = model.generate([1, 2, 3], 40, temperature=1.0, top_p=0.9, seed=5)
    b = model.generate([1, 2, 3], 40, temperature=1.0, top_p=0.9, seed=5)
    c = model.generate([1, 2, 3], 40, temperature=1.0, top_p=0.9, seed=6)
    assert a == b and a != c
    assert len(a) == 40 and all(0 <= t < 50 for t in a)
    greedy = model.generate([1, 2, 3], 10, temperature=0.0)
    # greedy generation equals the argmax of a parallel pass over prompt + generated tokens
    seq = torch.tensor([1, 2, 3] + greedy)[:, None]
    with torch.no_grad():
        logits, _ = model(seq)
    assert logits[2:-1, 0].argmax(-1).tolist() == greedy


def test_top_p_restricts_to_the_nucleus():
    from neuro.models.spikegpt.model import sample

    logits = torch.tensor([5.0, 4.0, 0.0, -1.0])
    g = torch.Generator().manual_seed(0)
    drawn = {sample(logits, 1.0, 0.5, g) for _ in range(50)}
    assert drawn == {0}  # token 0 alone has p > 0.5
    drawn = {sample(logits, 1.0, 0.99, g) for _ in range(300)}
    assert drawn == {0, 1}


def test_non_spiking_baseline_has_no_lif():
    model = _random_model(spiking=False)
    assert model.blocks[0].lif1 is None
    probe = {}
    with torch.no_grad():
        model(torch.randint(0, 50, (8, 1)), probe=probe)
    assert not torch.equal(probe["L0.att_spikes"], probe["L0.att_spikes"].round())


def test_binary_embedding_switch():
    on = _random_model()
    off = _random_model(binary_embedding=False)
    off.load_state_dict(on.state_dict())
    idx = torch.randint(0, 50, (6, 2))
    p_on, p_off = {}, {}
    with torch.no_grad():
        on(idx, probe=p_on)
        off(idx, probe=p_off)
    assert set(p_on["emb_spikes"].unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(p_off["emb_spikes"], on.emb.weight[idx])


def test_embedding_gradient_uses_atan_surrogate():
    model = _random_model()
    idx = torch.tensor([[7]])
    model.emb.weight.grad = None
    probe = {}
    model(idx, probe=probe)
    probe["emb_spikes"].sum().backward()
    e = model.emb.weight[7].detach()
    torch.testing.assert_close(model.emb.weight.grad[7], 1 / (1 + (torch.pi * e) ** 2))


def test_rwkv_init_and_presets():
    model = SpikeGPT(SpikeGPTConfig(vocab_size=40, n_layer=3, n_embd=16))
    b0, b2 = model.blocks[0], model.blocks[2]
    td = b0.att.time_decay.detach()
    assert float(td[0]) == -5.0 and abs(float(td[-1]) - 3.0) < 1e-6
    assert float(b0.att.output.weight.detach().abs().sum()) == 0.0
    assert float(b0.ffn.value.weight.detach().abs().sum()) == 0.0
    assert float(model.emb.weight.detach().abs().max()) < 1e-2
    assert float(b2.att.time_mix_v.min()) > float(b0.att.time_mix_v.min())
    for name, n in (("tiny", 0.92e6), ("46M", 41.2e6), ("216M", 215.4e6)):
        cfg = SpikeGPTConfig.preset(name)
        assert abs(cfg.n_params() - n) / n < 0.01, name
    cfg = SpikeGPTConfig.preset("tiny")
    model = SpikeGPT(cfg)
    assert sum(p.numel() for p in model.parameters()) == cfg.n_params()


def test_config_json_round_trip_and_from_config():
    cfg = SpikeGPTConfig(vocab_size=30, n_layer=1, n_embd=8, vocab={"kind": "byte"})
    d = json.loads(json.dumps(cfg.to_dict()))
    assert SpikeGPTConfig.from_dict(d) == cfg
    model = SpikeGPT.from_config(d)
    assert isinstance(model, SpikeGPT) and model.config == cfg
    assert SpikeGPT in FAMILY.models and FAMILY.name == "spikegpt"
    with pytest.raises(ValueError, match="n_layers"):
        SpikeGPTConfig.from_dict({"n_layers": 2})
    with pytest.raises(ValueError, match="n_embd"):
        SpikeGPTConfig(n_embd=0)
    with pytest.raises(ValueError, match="preset"):
        SpikeGPTConfig.preset("huge")


def test_bad_inputs_raise():
    model = _random_model()
    with pytest.raises(ValueError, match="token ids"):
        model(torch.tensor([[50]]))
    with pytest.raises(ValueError, match=r"\[T, B\]"):
        model(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="int64"):
        model(torch.zeros(2, 2))
    _, state = model(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="batch"):
        model(torch.zeros(2, 2, dtype=torch.long), state)
    with pytest.raises(ValueError, match="top_p"):
        model.generate([1], 3, top_p=0)
    with pytest.raises(ValueError, match="prompt"):
        model.generate([], 3)


# -- the fused streaming step (neuro.models.spikegpt.step, csrc/step.cpp) ----------------------
def _steps(model, idx, fused):
    state, outs = None, []
    with torch.inference_mode():
        for t in range(idx.shape[0]):
            out, state = model.step(idx[t], state, fused=fused)
            outs.append(out)
    return torch.stack(outs), state


@pytest.mark.parametrize("make", [_spiking_model, _random_model,
                                  lambda: _random_model(spiking=False)])
def test_fused_step_equals_parallel_over_512_tokens(make):
    from neuro.models.spikegpt import step as step_kernel

    model = make()
    assert step_kernel.load(), step_kernel.build_error()
    idx = torch.randint(0, model.config.vocab_size, (512, 2),
                        generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        par, pstate = model(idx)
    fused, fstate = _steps(model, idx, True)
    generic, _ = _steps(model, idx, False)
    assert float((fused - par).abs().max()) < 1e-4
    assert float((fused - generic).abs().max()) < 1e-4
    for a, b in zip(pstate.blocks, fstate.blocks):
        torch.testing.assert_close(b.att_v, a.att_v, rtol=0, atol=1e-5)
        torch.testing.assert_close(b.ffn_v, a.ffn_v, rtol=0, atol=1e-5)
        torch.testing.assert_close(b.att_shift, a.att_shift, rtol=0, atol=1e-5)
        torch.testing.assert_close(b.wkv.a, a.wkv.a, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(b.wkv.p, a.wkv.p, rtol=1e-5, atol=1e-5)


def test_fused_step_leaves_its_input_state_and_follows_weight_changes():
    from neuro.models.spikegpt import step as step_kernel

    model = _random_model()
    tok = torch.tensor([3, 7])
    with torch.inference_mode():
        _, state = model.step(tok)
        before = [t.clone() for b in state.blocks for t in (b.att_v, b.wkv.a, b.ffn_shift)]
        a1, _ = model.step(tok, state)
        a2, _ = model.step(tok, state)  # the same state again: the same result
        after = [t for b in state.blocks for t in (b.att_v, b.wkv.a, b.ffn_shift)]
        assert torch.equal(a1, a2)
        assert all(torch.equal(x, y) for x, y in zip(before, after))
        with torch.no_grad():  # an in-place update (optimizer, load_state_dict)
            model.head.weight.mul_(2)
        b1, _ = model.step(tok, state)
        ref, _ = model.step(tok, state, fused=False)
        assert torch.allclose(b1, 2 * a1, atol=1e-5) and torch.allclose(b1, ref, atol=1e-5)
    model.head.weight = torch.nn.Parameter(torch.zeros(model.head.weight.shape))  # replaced
    with torch.no_grad():
        c1, _ = model.step(tok, state)
    assert float(c1.abs().max()) == 0.0
    # with autograd on and trainable weights the generic path runs (and builds a graph)
    logits, _ = model.step(tok)
    assert logits.requires_grad
    assert not step_kernel.usable(model, tok)


def _rounded_copy(model, fmt):
    """A float32 copy of ``model`` whose block matrices and head hold the weights ``fmt`` stores:
    bfloat16 round-to-nearest-even, or int8 per output row (``s = max|w| / 127``)."""
    import copy

    out = copy.deepcopy(model)
    mats = [m for b in out.blocks for m in (b.att.key, b.att.value, b.att.receptance, b.att.output,
                                            b.ffn.key, b.ffn.receptance, b.ffn.value)]
    with torch.no_grad():
        for lin in [*mats, out.head]:
            w = lin.weight
            if fmt == "bfloat16":
                w.copy_(w.to(torch.bfloat16).float())
            elif lin is out.head or lin not in [b.ffn.value for b in out.blocks]:
                s = w.abs().amax(1, keepdim=True) / 127
                w.copy_((w / s).round().clamp(-127, 127) * s)
            else:  # ffn.value is stored transposed: its rows are the hidden units (columns here)
                s = w.abs().amax(0, keepdim=True) / 127
                w.copy_((w / s).round().clamp(-127, 127) * s)
    return out


@pytest.mark.parametrize("fmt", ["bfloat16", "int8"])
def test_fused_step_weight_formats_equal_the_rounded_weights(fmt):
    """The bfloat16/int8 step equals the float32 generic step of a copy whose weights were rounded
    to that format independently (so the format changes the weights and nothing else)."""
    model = _spiking_model()
    rounded = _rounded_copy(model, fmt)
    idx = torch.randint(0, model.config.vocab_size, (128, 2),
                        generator=torch.Generator().manual_seed(6))
    state, ref_state, outs, refs = None, None, [], []
    with torch.inference_mode():
        for t in range(idx.shape[0]):
            out, state = model.step(idx[t], state, weights=fmt)
            ref, ref_state = rounded.step(idx[t], ref_state, fused=False)
            outs.append(out)
            refs.append(ref)
        plain, _ = _steps(model, idx, True)
    outs_t, refs_t = torch.stack(outs), torch.stack(refs)
    assert float((outs_t - refs_t).abs().max()) < 1e-4
    assert float((outs_t - plain).abs().max()) > 1e-4  # the rounding is real


def test_weight_format_errors_name_the_format():
    model = _random_model()
    tok = torch.tensor([1])
    with torch.inference_mode():
        with pytest.raises(ValueError, match="weights must be one of"):
            model.step(tok, weights="fp8")
        with pytest.raises(ValueError, match="int8 weights run only in the fused C\\+\\+ step"):
            model.step(tok, fused=False, weights="int8")


@pytest.mark.parametrize("fmt", ["float32", "bfloat16", "int8"])
def test_fused_step_odd_width_equals_generic(fmt):
    """A width that is not a multiple of 8 (C = 20, H = 80) and two sequences: the products' scalar
    tails and the value product's groups of 4 non-zero rows plus leftover rows all run."""
    model = _random_model(seed=3, n_embd=20)
    rounded = model if fmt == "float32" else _rounded_copy(model, fmt)
    idx = torch.randint(0, model.config.vocab_size, (64, 2),
                        generator=torch.Generator().manual_seed(7))
    state = ref_state = None
    with torch.inference_mode():
        for t in range(idx.shape[0]):
            out, state = model.step(idx[t], state, weights=fmt)
            ref, ref_state = rounded.step(idx[t], ref_state, fused=False)
            assert float((out - ref).abs().max()) < 1e-4, t


def test_weight_formats_convert_the_cached_float32_list():
    """bfloat16/int8 lists are made from the cached float32 list (its vectors shared, not rebuilt),
    and every list is rebuilt after a weight change."""
    from neuro.models.spikegpt import step as step_kernel

    model = _random_model()
    f32, _ = step_kernel._weights(model, "float32")
    n = len(f32) - 3
    mats = {b + j for b in range(0, n, 18) for j in step_kernel._MATRICES} | {len(f32) - 1}
    for fmt, dtype in (("bfloat16", torch.bfloat16), ("int8", torch.int8)):
        w, scales = step_kernel._weights(model, fmt)
        assert all(w[i] is f32[i] for i in range(len(f32)) if i not in mats)
        assert all(w[i].dtype == dtype for i in mats)
        assert step_kernel._weights(model, "float32")[0] is f32
        assert step_kernel._weights(model, fmt)[0] is w
    with torch.no_grad():
        model.head.weight.mul_(2)
    w8, s8 = step_kernel._weights(model, "int8")
    assert step_kernel._weights(model, "float32")[0] is not f32
    torch.testing.assert_close(s8[-1], 2 * scales[-1])


def test_fused_step_of_an_inference_mode_model_is_not_cached():
    """Parameters made under ``torch.inference_mode`` have no version counter: the weight lists
    are rebuilt every step, so an in-place update is still seen."""
    from neuro.models.spikegpt import step as step_kernel

    plain = _random_model()
    with torch.inference_mode():
        model = _random_model()
        tok = torch.tensor([3, 7])
        a, _ = model.step(tok)
        assert step_kernel._CACHE.get(model) is None
        ref, _ = plain.step(tok)
        assert torch.equal(a, ref)
        model.head.weight.mul_(2)
        b, _ = model.step(tok)
    torch.testing.assert_close(b, 2 * a, rtol=1e-6, atol=1e-6)
