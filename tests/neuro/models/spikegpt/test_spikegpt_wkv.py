"""WKV: C++ kernel and torch fallback against the O(T^2) float64 closed form, and gradcheck."""
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from neuro.models.spikegpt import wkv as W

FIX = Path(__file__).resolve().parents[3] / "fixtures" / "spikegpt"
IMPLS = ["cpp", "torch"]


@pytest.fixture(params=IMPLS)
def impl(request, monkeypatch):
    if request.param == "cpp":
        assert W.load(), "the WKV C++ extension must build (the set-up builds it)"
        monkeypatch.delenv("NEURO_WKV", raising=False)
    else:
        monkeypatch.setenv("NEURO_WKV", "torch")
    return request.param


def _inputs(T, B, C, dtype, k_scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    td = torch.randn(C, generator=g, dtype=torch.float64)
    tf = torch.randn(C, generator=g, dtype=torch.float64)
    k = torch.randn(T, B, C, generator=g, dtype=torch.float64) * k_scale
    v = torch.randn(T, B, C, generator=g, dtype=torch.float64)
    return [t.to(dtype) for t in (td, tf, k, v)]


def test_backend_reports_the_path(impl):
    k = torch.zeros(2, 1, 3)
    assert W.backend(k) == impl


@pytest.mark.parametrize("T", [1, 2, 37])
def test_float32_equals_closed_form(impl, T):
    td, tf, k, v = _inputs(T, 3, 8, torch.float32)
    y, _ = W.wkv(td, tf, k, v)
    ref = W.wkv_closed_form(*(t.double() for t in (td, tf, k, v)))
    assert y.dtype == torch.float32
    assert float((y.double() - ref).abs().max()) < 1e-6


def test_t1_is_v(impl):
    td, tf, k, v = _inputs(1, 2, 5, torch.float32)
    y, _ = W.wkv(td, tf, k, v)
    torch.testing.assert_close(y, v, rtol=1e-6, atol=1e-6)


def test_large_k_overflow_path(impl):
    td, tf, k, v = _inputs(24, 2, 6, torch.float32, k_scale=60.0)  # |k| up to ~200: e^k = inf
    assert float(k.abs().max()) > 89  # exp overflows float32 above 88.7
    y, _ = W.wkv(td, tf, k, v)
    assert torch.isfinite(y).all()
    ref = W.wkv_closed_form(*(t.double() for t in (td, tf, k, v)))
    assert float((y.double() - ref).abs().max()) < 1e-5
    naive = torch.exp(k)  # what a non-max-subtracted recurrence would face
    assert not torch.isfinite(naive).all()


def test_float32_gradients_equal_closed_form(impl):
    td, tf, k, v = _inputs(20, 2, 4, torch.float32, k_scale=3.0)
    gy = torch.randn(20, 2, 4)
    ins = [t.clone().requires_grad_() for t in (td, tf, k, v)]
    (W.wkv(*ins)[0] * gy).sum().backward()
    ref_in = [t.double().clone().requires_grad_() for t in (td, tf, k, v)]
    (W.wkv_closed_form(*ref_in) * gy.double()).sum().backward()
    for name, a, b in zip("td tf k v".split(), ins, ref_in):
        err = float((a.grad.double() - b.grad).abs().max() / b.grad.abs().max())
        assert err < 1e-5, name


def test_gradcheck_float64(impl):
    ins = [t.clone().requires_grad_() for t in _inputs(7, 2, 3, torch.float64, k_scale=2.0)]
    assert torch.autograd.gradcheck(lambda *a: W.wkv(*a)[0], ins, eps=1e-6, atol=1e-8)


def test_golden_unit_vectors(impl):
    g = load_file(str(FIX / "golden.safetensors"))
    tm = [g[f"wkv.{n}"].transpose(0, 1).contiguous() for n in ("k", "v", "gy")]
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-6)):
        ins = [t.to(dtype).clone().requires_grad_()
               for t in (g["wkv.time_decay"], g["wkv.time_first"], tm[0], tm[1])]
        y, _ = W.wkv(*ins)
        (y * tm[2].to(dtype)).sum().backward()
        got = dict(y=y, g_time_decay=ins[0].grad, g_time_first=ins[1].grad, g_k=ins[2].grad,
                   g_v=ins[3].grad)
        for name, val in got.items():
            ref = g[f"wkv.{name}"]
            ref = ref.transpose(0, 1) if ref.dim() == 3 else ref
            assert float((val.detach().double() - ref).abs().max() / ref.abs().max()) < tol, (dtype, name)


def test_chunks_with_state_equal_one_pass(impl):
    td, tf, k, v = _inputs(30, 2, 5, torch.float32, k_scale=4.0)
    y, st = W.wkv(td, tf, k, v)
    parts, s = [], None
    for lo, hi in ((0, 1), (1, 13), (13, 14), (14, 30)):
        yp, s = W.wkv(td, tf, k[lo:hi], v[lo:hi], s)
        parts.append(yp)
    assert torch.equal(torch.cat(parts), y)
    for a, b in zip(s, st):
        assert torch.equal(a, b)


def test_cpp_and_torch_agree(monkeypatch):
    assert W.load(), "the WKV C++ extension must build (the set-up builds it)"
    ins = _inputs(40, 3, 7, torch.float32, k_scale=5.0)
    gy = torch.randn(40, 3, 7)
    out = {}
    for impl in IMPLS:
        monkeypatch.setenv("NEURO_WKV", impl)
        x = [t.clone().requires_grad_() for t in ins]
        y, _ = W.wkv(*x)
        (y * gy).sum().backward()
        out[impl] = [y.detach()] + [t.grad for t in x]
    for a, b in zip(out["cpp"], out["torch"]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_bad_shapes_raise():
    td, tf, k, v = _inputs(4, 2, 3, torch.float32)
    with pytest.raises(ValueError, match="k and v"):
        W.wkv(td, tf, k, v[:, :1])
    with pytest.raises(ValueError, match="time_decay"):
        W.wkv(td[:2], tf, k, v)
    with pytest.raises(ValueError, match="dtype"):
        W.wkv(td, tf, k, v.double())
    with pytest.raises(ValueError, match="state"):
        W.wkv(td, tf, k, v, W.init_state(5, 3))
