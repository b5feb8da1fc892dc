"""Every family's config declares its memory before the model is built (issue 19).

``ModelConfig.n_elements()`` is computed from the config alone; it must equal the element count
of the state dict of the model the config builds (the oracle: the real model, built small).
``from_dict`` (checkpoint loading, ``from_config``, ``neuro train``) refuses a config whose
declared memory is over ``NEURO_MAX_MODEL_BYTES`` before anything is allocated.
"""
import contextlib
import resource
import time

import pytest

from neuro.limits import LimitError, limit
from neuro.models import SpikingMLP, SpikingMLPConfig
from neuro.models.delay_snn import DelaySNN, DelaySNNConfig
from neuro.models.egru.config import EGRUGestureConfig, EGRULMConfig
from neuro.models.egru.model import EGRUGestureNet, EGRULanguageModel
from neuro.models.lsm import LSM, LSMClassifier, LSMConfig
from neuro.models.spikegpt.config import SpikeGPTConfig
from neuro.models.spikegpt.model import SpikeGPT

SMALL = [
    (DelaySNN, DelaySNNConfig(n_inputs=3, n_hidden=4, n_layers=2, n_outputs=2, max_delay=5)),
    (DelaySNN, DelaySNNConfig(n_inputs=5, n_hidden=7, n_layers=3, n_outputs=2, batchnorm=False,
                              delays="none")),
    (LSM, LSMConfig(n_inputs=3, size=4, n_outputs=2, refractory=2)),
    (LSM, LSMConfig(n_inputs=3, size=40, n_outputs=5, reservoir="maass", grid=[2, 4, 5])),
    (EGRULanguageModel, EGRULMConfig(vocab_size=7, emb_dim=3, hidden_sizes=[4, 3])),
    (EGRUGestureNet, EGRUGestureConfig(classes=3, frame_size=8, channels=[2, 3], features=5,
                                       hidden_size=4)),
    (SpikeGPT, SpikeGPTConfig(vocab_size=7, n_layer=2, n_embd=4)),
    (SpikeGPT, SpikeGPTConfig(vocab_size=9, n_layer=1, n_embd=8, spiking=False)),
    (SpikingMLP, SpikingMLPConfig(layers=[3, 4, 5, 2])),
    (SpikingMLP, SpikingMLPConfig(layers=[3, 2], bias=False)),
]


def _elements(module) -> int:
    return sum(t.numel() for t in module.state_dict().values())


@pytest.mark.parametrize("cls,config", SMALL, ids=lambda v: type(v).__name__)
def test_declared_elements_equal_the_built_model(cls, config):
    assert config.n_elements() == _elements(cls(config))
    assert config.memory_bytes() >= 4 * config.n_elements()


def test_lsm_classifier_head_is_counted():
    from neuro.models.lsm.model import _head_elements

    lsm = LSMConfig(n_inputs=3, size=4, n_outputs=2)
    head = {"dims": [8, 5, 2], "loss": "contrastive", "n_classes": 3}
    model = LSMClassifier.from_config({"lsm": lsm.to_dict(), "head": head})
    assert lsm.n_elements() + _head_elements(model.head.config_dict()) == _elements(model)


# Configs of every family whose every integer is under NEURO_MAX_ELEMENTS (2**30) but whose
# model would need terabytes: a wide layer, many layers, a big reservoir, a wide embedding.
HUGE = [
    (DelaySNNConfig, {"n_hidden": 10**8}),
    (DelaySNNConfig, {"n_hidden": 1000, "n_layers": 10**6}),
    (LSMConfig, {"size": 10**6}),
    (SpikeGPTConfig, {"n_embd": 10**6}),
    (SpikeGPTConfig, {"n_layer": 10**6, "n_embd": 512}),
    (EGRULMConfig, {"emb_dim": 10**5, "hidden_sizes": [10**5]}),
    (EGRUGestureConfig, {"channels": [10**5, 10**5]}),
    (SpikingMLPConfig, {"layers": [10**8, 10**8]}),
]


@contextlib.contextmanager
def _address_space(extra: int):
    """Lower the soft address-space limit to what the process maps now plus ``extra`` bytes
    for the block (an allocation beyond it fails with MemoryError)."""
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (vm + extra, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.mark.parametrize("cls,d", HUGE, ids=lambda v: getattr(v, "__name__", "cfg"))
def test_huge_configs_are_refused_before_allocating(cls, d):
    start = time.perf_counter()
    with pytest.raises(LimitError, match=rf"{cls.__name__}: the model would need .* over the "
                                         r"limit of .*NEURO_MAX_MODEL_BYTES"), \
            _address_space(64 << 20):
        cls.from_dict(d)
    assert time.perf_counter() - start < 1.0


def test_the_limit_is_the_environment_variable(monkeypatch):
    cfg = {"n_inputs": 10, "n_hidden": 100, "n_outputs": 2}
    need = DelaySNNConfig(**cfg).memory_bytes()
    monkeypatch.setenv("NEURO_MAX_MODEL_BYTES", str(need))
    assert limit("NEURO_MAX_MODEL_BYTES") == need
    DelaySNNConfig.from_dict(cfg)  # exactly at the limit: allowed
    monkeypatch.setenv("NEURO_MAX_MODEL_BYTES", str(need - 1))
    with pytest.raises(LimitError, match="NEURO_MAX_MODEL_BYTES"):
        DelaySNNConfig.from_dict(cfg)


def test_checkpoint_configs_go_through_the_check(monkeypatch):
    """``from_config`` (what checkpoint loading calls) of every family, the LSM classifier's
    head and an imported graph's declared arrays."""
    from neuro.graph import GraphModel

    monkeypatch.setenv("NEURO_MAX_MODEL_BYTES", "1M")
    with pytest.raises(LimitError, match="DelaySNNConfig"):
        DelaySNN.from_config({"n_hidden": 1000})
    with pytest.raises(LimitError, match="SpikeGPTConfig"):
        SpikeGPT.from_config({"n_embd": 1024})
    with pytest.raises(LimitError, match="EGRULMConfig"):
        EGRULanguageModel.from_config({})
    with pytest.raises(LimitError, match="lsm-projection"):
        LSMClassifier.from_config({"lsm": {"n_inputs": 3, "size": 4, "n_outputs": 2},
                                   "head": {"dims": [1000, 1000, 2]}})
    with pytest.raises(LimitError, match="graph checkpoint config"):
        GraphModel.from_config({"graph": {}, "keys": ["w"],
                                "arrays": {"w": {"shape": [1000, 1000], "dtype": "float32"}}})


def test_spikegpt_presets_are_checked_too():
    with pytest.raises(ValueError, match="unknown keys"):
        SpikeGPTConfig.preset("tiny", n_heads=4)
    with pytest.raises(LimitError, match="NEURO_MAX_MODEL_BYTES"):
        SpikeGPTConfig.preset("216M", n_layer=10**6)
