"""SpikeGPT (Zhu, Zhao, Li, Eshraghian, TMLR 2024): the spiking RWKV language model.

``model.py`` (the model, both modes, generation), ``config.py`` (config and presets), ``wkv.py``
with ``csrc/wkv.cpp`` (the WKV kernel), ``reference.py`` (the authors' state dicts),
``training.py`` (the recipe). Text data: :mod:`neuro.datasets.text`.
"""
from neuro.models.base import Family

from .config import PRESETS, SpikeGPTConfig
from .model import SpikeGPT, SpikeGPTState
from .reference import load_reference
from .training import add_arguments, fit, train

FAMILY = Family(
    name="spikegpt",
    summary="SpikeGPT: spiking RWKV language model (binary embedding, LIF sub-layer outputs)",
    models=(SpikeGPT,),
    fit=fit,
    train=train,
    add_arguments=add_arguments,
)

__all__ = ["FAMILY", "PRESETS", "SpikeGPT", "SpikeGPTConfig", "SpikeGPTState", "load_reference"]
