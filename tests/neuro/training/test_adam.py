"""``neuro.training.loop.adam``: torch's fused Adam where it applies, the same update rule."""
import torch

from neuro.training.loop import adam


def _run(opt_factory, steps: int = 5) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(33, 17, generator=g)),
              torch.nn.Parameter(torch.randn(17, generator=g))]
    opt = opt_factory(params)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g)
        opt.step()
    return [p.detach() for p in params]


def test_fused_on_cpu_and_equal_to_the_default_update():
    params = [torch.nn.Parameter(torch.zeros(3))]
    assert adam(params, lr=1e-2).defaults["fused"] is True
    fused = _run(lambda ps: adam(ps, lr=1e-2, weight_decay=1e-3))
    default = _run(lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=1e-3))
    moved = _run(lambda ps: adam(ps, lr=1e-2, weight_decay=1e-3), steps=0)
    for a, b, c in zip(fused, default, moved):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
        assert not torch.equal(a, c)  # the parameters moved


def test_falls_back_where_fused_does_not_apply():
    params = [torch.nn.Parameter(torch.zeros(3, device="meta"))]
    assert not adam(params, lr=1e-2).defaults["fused"]
