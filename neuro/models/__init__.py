"""Model families (one folder each) and the tables the command line and checkpoints read.

``FAMILIES``: family name -> :class:`~neuro.models.base.Family` (``neuro train NAME``,
``neuro demo``). ``BUILDERS``: checkpoint model name -> builder from its JSON config, derived from
the families' model classes plus the models that belong to no family (the feed-forward
``SpikingMLP`` and the imported ``graph``). Adding a family is one folder and one line below.
"""
from collections.abc import Callable
from typing import Any

from torch import nn

from . import delay_snn, egru, lsm, spikegpt
from .base import Family, FamilyModel, ModelConfig, Trained, TrainRequest, export_view
from .delay_snn import DelaySNN, DelaySNNConfig
from .feedforward import SpikingMLP, SpikingMLPConfig
from .lsm import LSM, LSMClassifier, LSMConfig

#: family name -> its table entry, in demo order
FAMILIES: dict[str, Family] = {f.name: f for f in (
    delay_snn.FAMILY,
    lsm.FAMILY,
    spikegpt.FAMILY,
    egru.FAMILY,
)}


def _graph_model(cfg: dict[str, Any]) -> nn.Module:
    from ..graph.module import GraphModel

    return GraphModel.from_config(cfg)


#: checkpoint model name -> builder from its JSON config (a static table, not a registry of live objects)
BUILDERS: dict[str, Callable[[dict[str, Any]], nn.Module]] = {
    SpikingMLP.name: SpikingMLP.from_config,
    "graph": _graph_model,
    **{cls.name: cls.from_config for f in FAMILIES.values() for cls in f.models},
}

__all__ = ["BUILDERS", "DelaySNN", "DelaySNNConfig", "FAMILIES", "Family", "FamilyModel", "LSM",
           "LSMClassifier", "LSMConfig", "ModelConfig", "SpikingMLP", "SpikingMLPConfig",
           "TrainRequest", "Trained", "export_view"]
