"""The liquid state machine family: fixed spiking reservoirs of the shared LIF and trained
readouts. ``model.py``: :class:`LSM`, :class:`LSMClassifier` and their config; ``readout.py``:
ridge and ANN/contrastive readouts; ``device_model.py``: resistive-memory non-idealities;
``training.py``: readout training, ``neuro train lsm`` and the demo."""
from ..base import Family
from . import training
from .device_model import DeviceModel
from .model import (
    CONNECTION_TYPES,
    LSM,
    MAASS_CONNECTIVITY,
    MAASS_STRENGTHS,
    RESERVOIRS,
    LSMClassifier,
    LSMConfig,
    MaassColumn,
    build_weights,
    connection_probability,
    gaussian_weights,
    grid_positions,
    maass_column,
    rate_statistics,
    scale_to_spectral_radius,
    spectral_radius,
)
from .training import LSMResult, load_task, train_lsm

FAMILY = Family(
    name="lsm",
    summary="liquid state machine: fixed reservoir + trained readout (N-MNIST, N-TIDIGITS or offline)",
    models=(LSM, LSMClassifier),
    fit=train_lsm,
    train=training.train,
    add_arguments=training.add_arguments,
    demo=training.demo,
)

__all__ = ["CONNECTION_TYPES", "DeviceModel", "FAMILY", "LSM", "LSMClassifier", "LSMConfig",
           "LSMResult", "MAASS_CONNECTIVITY", "MAASS_STRENGTHS", "MaassColumn", "RESERVOIRS",
           "build_weights", "connection_probability", "gaussian_weights", "grid_positions",
           "load_task", "maass_column", "rate_statistics", "scale_to_spectral_radius",
           "spectral_radius", "train_lsm"]
