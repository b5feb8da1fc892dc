"""The delay SNN family: LIF networks with learnable synaptic delays (DCLS; Hammouamri et al.,
ICLR 2024). ``model.py``: :class:`DelaySNN` and its config; ``training.py``: the reference's
recipe (:func:`train_delay_snn`), ``neuro train delay-snn`` and the demo."""
from ..base import Family
from . import training
from .model import DELAY_MODES, DelaySNN, DelaySNNConfig, predict, summed_softmax_loss
from .training import evaluate_delay_snn, train_delay_snn

FAMILY = Family(
    name="delay-snn",
    summary="LIF network with learnable synaptic delays (SHD with --data, else the offline delay task)",
    models=(DelaySNN,),
    fit=train_delay_snn,
    train=training.train,
    add_arguments=training.add_arguments,
    demo=training.demo,
)

__all__ = ["DELAY_MODES", "DelaySNN", "DelaySNNConfig", "FAMILY", "evaluate_delay_snn", "predict",
           "summed_softmax_loss", "train_delay_snn"]
