"""Models built from neuro neurons and layers, and the table the checkpoint loader uses."""
from collections.abc import Callable
from typing import Any

from torch import nn

from .delay_snn import DelaySNN, DelaySNNConfig
from .feedforward import SpikingMLP, SpikingMLPConfig
from .lsm import LSM, LSMClassifier, LSMConfig


#: model name -> builder from its JSON config (a static table, not a registry of live objects)
def _graph_model(cfg: dict[str, Any]) -> nn.Module:
    from ..graph.module import GraphModel

    return GraphModel.from_config(cfg)


BUILDERS: dict[str, Callable[[dict[str, Any]], nn.Module]] = {
    SpikingMLP.name: lambda cfg: SpikingMLP(SpikingMLPConfig.from_dict(cfg)),
    "graph": _graph_model,
    DelaySNN.name: lambda cfg: DelaySNN(DelaySNNConfig.from_dict(cfg)),
    LSM.name: lambda cfg: LSM(LSMConfig.from_dict(cfg)),
    LSMClassifier.name: LSMClassifier.from_config,
}

__all__ = ["BUILDERS", "DelaySNN", "DelaySNNConfig", "LSM", "LSMClassifier", "LSMConfig", "SpikingMLP",
           "SpikingMLPConfig"]
