"""DelayedLinear: DCLS kernel against the ``dcls`` package, delay semantics, schedule, lowering."""
import pytest
import torch
import torch.nn.functional as F
from DCLS.construct.modules import Dcls1d

from neuro.graph import from_module, simulate
from neuro.kernels.dcls import event_density_limit
from neuro.layers import DelayedLinear, Sequential
from neuro.neurons import LI, LIF


def _pair(K, version, n_in=7, n_out=5, seed=0):
    torch.manual_seed(seed)
    ours = DelayedLinear(n_in, n_out, K)
    with torch.no_grad():
        ours.P.uniform_(-(K // 2), K // 2)  # fractional positions over the whole range
    ref = Dcls1d(n_in, n_out, kernel_count=1, dilated_kernel_size=K, bias=False, version=version)
    with torch.no_grad():
        ref.weight.copy_(ours.weight.unsqueeze(-1))
        ref.P.copy_(ours.P.view(1, n_out, n_in, 1))
        if version == "max":
            ours.sigma.fill_(0.0)
        ref.SIG.fill_(float(ours.sigma))
    return ours, ref


@pytest.mark.parametrize("K", [5, 25, 31])
@pytest.mark.parametrize("version", ["gauss", "max"])
def test_kernel_equals_dcls(K, version):
    ours, ref = _pair(K, version)
    k_ref = ref.DCK(ref.weight, ref.P, ref.SIG)
    torch.testing.assert_close(ours.kernel(version), k_ref, atol=1e-6, rtol=0)


def test_forward_equals_dcls_with_reference_padding():
    K = 25
    ours, ref = _pair(K, "gauss")
    x = (torch.rand(40, 3, 7) < 0.3).float()
    xb = F.pad(x.permute(1, 2, 0), (K - 1, (K - 1) // 2))
    y_ref = ref(xb).permute(2, 0, 1)
    y = ours(x)
    assert y.shape == (40 + (K - 1) // 2, 3, 5)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)


def test_delay_direction_and_output_length():
    K, t0 = 25, 4
    layer = DelayedLinear(3, 2, K).integer_delays()
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[1, 2] = 1.0
        layer.P.fill_(0.0)
        layer.P[1, 2] = 7.0  # rounded position p = 7 -> delay K - 1 - (p + K//2) = 5
    x = torch.zeros(20, 1, 3)
    x[t0, 0, 2] = 1.0
    y = layer(x)
    assert y.shape[0] == 20 + (K - 1) // 2
    assert int(y[:, 0, 1].argmax()) == t0 + (K - 1 - (7 + K // 2))
    assert y[:, 0, 1].sum() == 1.0


def test_sigma_schedule_reaches_final_and_stays():
    K, epochs = 25, 150
    s = [DelayedLinear.sigma_at(e, K, epochs) for e in range(epochs)]
    assert s[0] == K // 2
    assert s[epochs // 4] == pytest.approx(0.23, abs=1e-6)
    assert all(v == pytest.approx(0.23, abs=1e-6) for v in s[epochs // 4:])
    assert all(a > b for a, b in zip(s[: epochs // 4], s[1 : epochs // 4 + 1]))


def test_integer_mode_is_one_hot_and_keeps_float_positions():
    K = 25
    layer = DelayedLinear(6, 4, K)
    P_before = layer.P.detach().clone()
    x = (torch.rand(30, 2, 6) < 0.3).float()
    y_train = layer(x)
    layer.integer_delays()
    # "max" kernel with sigma 0 at the rounded positions: one-hot rows holding w
    with torch.no_grad():
        saved = layer.P.clone()
        layer.P.copy_(torch.round(layer.P))
        sig = layer.sigma.clone()
        layer.sigma.fill_(0.0)
        k = layer.kernel("max")
        layer.P.copy_(saved)
        layer.sigma.copy_(sig)
    assert ((k != 0).sum(-1) <= 1).all()
    torch.testing.assert_close(k.sum(-1), layer.weight.detach(), atol=1e-6, rtol=1e-6)
    y_int = layer(x)
    # integer forward == conv with that one-hot kernel
    xb = F.pad(x.permute(1, 2, 0), (K - 1, (K - 1) // 2))
    torch.testing.assert_close(y_int, F.conv1d(xb, k).permute(2, 0, 1), atol=1e-5, rtol=1e-5)
    layer.integer_delays(False)
    assert torch.equal(layer.P, P_before) and torch.equal(layer(x), y_train)


def test_positions_learn_and_delay_limit_is_kept():
    layer = DelayedLinear(4, 3, 25, delay_limit=6)
    assert int(layer.delays().max()) <= 6
    x = (torch.rand(30, 2, 4) < 0.3).float()
    layer(x).pow(2).sum().backward()
    assert layer.P.grad is not None and layer.P.grad.abs().sum() > 0
    with torch.no_grad():
        layer.P.sub_(100.0)
    layer.clamp_positions()
    assert int(layer.delays().max()) == 6 and int(layer.delays().min()) >= 0
    with pytest.raises(ValueError, match="odd"):
        DelayedLinear(4, 3, 24)
    with pytest.raises(ValueError, match="delay_limit must be an int >= 1"):
        DelayedLinear(4, 3, 25, delay_limit=0)


def test_integer_delay_network_equals_graph_executor():
    """Streaming form: every layer with right_padding=0, the input padded once."""
    torch.manual_seed(3)
    K = 9
    net = Sequential(DelayedLinear(12, 16, K, right_padding=0), LIF(beta=0.8, reset="zero"),
                     DelayedLinear(16, 4, K, right_padding=0), LI(beta=0.9))
    with torch.no_grad():
        net[0].weight.mul_(2.5)
    for m in net:
        if isinstance(m, DelayedLinear):
            m.integer_delays()
    x = (torch.rand(50, 3, 12) < 0.15).float()
    x = F.pad(x, (0, 0, 0, 0, 0, 2 * ((K - 1) // 2)))
    g = from_module(net)
    assert g.nodes["0"].kind == "DelayedAffine" and int(g.nodes["0"].delay.max()) <= K - 1
    rec = simulate(g, x, record=True)
    out, _ = net(x)
    assert rec["1"].sum() > 0
    assert torch.equal(rec["1"], net[1](net[0](x))[0])
    assert torch.equal(rec["output"], out)


@pytest.mark.parametrize("kind", ["counts", "spikes", "dense"])
def test_training_paths_forward_and_gradients_equal_dcls(kind):
    """The training path (event-driven for sparse input, spectral for dense input) against
    Dcls1d: output and the gradients of input, weight and position, normalised by their largest
    magnitude."""
    K = 25
    ours, ref = _pair(K, "gauss", n_in=24, n_out=40, seed=1)
    g = torch.Generator().manual_seed(2)
    limit = event_density_limit(60, 4, 24, 40, K, (K - 1) // 2, True)
    mask = torch.rand(60, 4, 24, generator=g) < (0.6 if kind == "dense" else limit / 2)
    x = mask * (torch.randint(1, 5, mask.shape, generator=g).float() if kind == "counts" else 1 / 0.6)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y = ours(x1)
    path = "DclsSpectral" if kind == "dense" else "_DclsEvents"
    assert type(y.grad_fn).__name__.startswith(path), f"{path} did not run"
    y_ref = ref(F.pad(x2.permute(1, 2, 0), (K - 1, (K - 1) // 2))).permute(2, 0, 1)
    gy = torch.randn(y.shape, generator=g)
    y.backward(gy)
    y_ref.backward(gy)

    def rel(a, b):
        return float((a - b).abs().max() / b.abs().max())

    assert rel(y.detach(), y_ref.detach()) <= 1e-5
    assert rel(x1.grad, x2.grad) <= 1e-5
    assert rel(ours.weight.grad, ref.weight.grad.squeeze(-1)) <= 1e-5
    assert rel(ours.P.grad, ref.P.grad.view_as(ours.P)) <= 1e-5
