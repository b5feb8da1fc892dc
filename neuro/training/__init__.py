"""Training shared by every model family.

* :mod:`.loop`: :func:`fit` (the one epoch loop: progress bar, DDP, schedules, per-epoch
  evaluation and checkpoints), :func:`evaluate`, :func:`train_classifier`;
* :mod:`.distributed`: data-parallel training under ``torchrun`` (DDP, gloo on the CPU);
* :mod:`.qat`: quantization-aware training for the integer number formats.

Family recipes (``neuro.models.<family>.training``) build on these.
"""
from . import distributed
from .loop import TrainResult, epoch_checkpoints, evaluate, fit, summed_argmax, train_classifier

__all__ = ["TrainResult", "distributed", "epoch_checkpoints", "evaluate", "fit", "summed_argmax",
           "train_classifier"]
