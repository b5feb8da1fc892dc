"""SpikeGPT (Zhu, Zhao, Li, Eshraghian, TMLR 2024): the spiking RWKV language model.

``model.py`` (the model, both modes, generation), ``config.py`` (config and presets), ``wkv.py``
with ``csrc/wkv.cpp`` (the WKV kernel), ``reference.py`` (the authors' state dicts),
``training.py`` (the recipe). Text data: :mod:`neuro.datasets.text`.
"""
from neuro.models.base import Command, Family

from .config import PRESETS, SpikeGPTConfig
from .model import SpikeGPT, SpikeGPTState
from .reference import load_reference
from .training import (
    add_arguments,
    add_generate_arguments,
    demo,
    fit,
    resolve_config,
    run_generate,
    train,
)

FAMILY = Family(
    name="spikegpt",
    summary="SpikeGPT: spiking RWKV language model (binary embedding, LIF sub-layer outputs)",
    models=(SpikeGPT,),
    fit=fit,
    train=train,
    add_arguments=add_arguments,
    read_config=resolve_config,
    demo=demo,
    commands=(Command("generate", "stream text from a SpikeGPT checkpoint", add_generate_arguments,
                      lambda args: run_generate(args) and 0),),
)

__all__ = ["FAMILY", "PRESETS", "SpikeGPT", "SpikeGPTConfig", "SpikeGPTState", "load_reference"]
