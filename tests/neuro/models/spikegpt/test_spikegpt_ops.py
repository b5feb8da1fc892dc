"""Operations per token with NeuroBench's rules (neuro.models.spikegpt.ops)."""
from pathlib import Path

import pytest
import torch

from neuro.models.spikegpt.ops import count_ops
from neuro.models.spikegpt.reference import load_reference

FIX = Path(__file__).resolve().parents[3] / "fixtures" / "spikegpt"


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield


def test_counts_on_the_golden_model():
    model = load_reference(FIX / "weights.safetensors").eval()
    C, V, H, L = 32, 77, 128, 2
    idx = torch.randint(0, V, (24, 2))
    rep = count_ops(model, idx)
    per = rep.per_token()
    assert per["dense_synaptic_ops"] == L * (5 * C * C + 2 * C * H) + V * C
    # no Linear ever reads spikes: every effective synaptic operation is a MAC
    assert per["effective_acs"] == 0
    for name, ops in rep.layers.items():
        if name == "residual":
            continue
        if name.endswith("ffn.value"):  # the zeros after relu(.)^2 are skipped
            assert 0 < ops.macs < ops.dense
        else:
            assert ops.macs == ops.dense, name
    # the spikes only feed the residual adds: one AC per spike
    probe = {}
    with torch.no_grad():
        model(idx, probe=probe)
    n_spikes = sum(int(v.sum()) for k, v in probe.items() if k.endswith("_spikes") and k[0] == "L")
    assert rep.layers["residual"].acs == rep.spikes == n_spikes > 0
    assert 0.1 < per["spike_rate"] < 0.5
    assert 1.0 < per["dense_over_effective"] < 2.0  # far from the paper's 20x


def test_ops_of_a_non_spiking_model_are_macs():
    model = load_reference(FIX / "weights.safetensors", spiking=False).eval()
    rep = count_ops(model, torch.randint(0, 77, (8, 1)))
    assert rep.spikes == 0 and rep.layers["residual"].acs == 0 and rep.layers["residual"].macs > 0
