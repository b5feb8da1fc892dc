"""Training liquid state machines: only the readout learns (``neuro train lsm``).

:func:`train_lsm` runs the fixed reservoir once over the data, builds features
(:func:`.readout.spike_features`: spike counts, or traces with ``trace_beta < 1``) and fits
one readout:

* ``"ridge"``: closed-form ridge regression, ``alpha`` chosen on a held-out 20 % of the training
  set; the readout is stored in the model (``LSM.set_readout``), so the whole network, readout
  included, lowers to the graph IR and runs on every target;
* ``"mlp"``: a trained ANN projection (Adam, cross-entropy; ``hidden=()`` is a trained linear
  layer, as in the reference's "ANN on the LSM features");
* ``"contrastive"``: the same projection trained with the CLIP-style loss against learned class
  embeddings (:func:`.readout.clip_loss`).

The last two return an :class:`~neuro.models.lsm.LSMClassifier` (reservoir + head). The same
ridge readout fitted on the raw input's features (no reservoir) is reported as the baseline.

:func:`train` is the command-line entry (``neuro train lsm``): it picks the data (an N-MNIST
folder, an N-TIDIGITS file, or the offline stand-ins) and trains; the family table writes the
checkpoint (:meth:`neuro.models.base.Family.run`).
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from ...datasets import SpikeDataset
from ..base import Trained, TrainRequest, split_keys
from .model import LSM, LSMClassifier, LSMConfig
from .readout import head_accuracy, select_alpha, spike_features, train_head

READOUTS = ("ridge", "mlp", "contrastive")
DEFAULT_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)


@dataclass
class LSMResult:
    """Accuracies (fractions), the chosen ridge ``alpha``, reservoir statistics, wall time (s)."""

    readout: str
    train_accuracy: float = float("nan")
    test_accuracy: float = float("nan")
    raw_test_accuracy: float | None = None
    alpha: float | None = None
    reservoir: dict[str, float] = field(default_factory=dict)
    loss: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def reservoir_features(model: LSM, data: SpikeDataset, *, batch_size: int = 256, noisy: bool = False,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Features ``[N, size]`` of every sample and the reservoir's firing statistics."""
    if data.n_channels != model.config.n_inputs:
        raise ValueError(f"the data has {data.n_channels} channels, the LSM expects "
                         f"{model.config.n_inputs} inputs (n_inputs)")
    feats, total, silent_sum, count = [], 0.0, None, 0
    for x, _ in data.batches(batch_size):
        s = model.reservoir_spikes(x, noisy=noisy, generator=generator)
        feats.append(spike_features(s, beta=model.config.trace_beta))
        total += float(s.sum())
        per = s.sum((0, 1))
        silent_sum = per if silent_sum is None else silent_sum + per
        count += s.shape[0] * s.shape[1]
    n = model.config.size
    stats = {"mean_rate": total / (count * n),
             "silent_fraction": float((cast(torch.Tensor, silent_sum) == 0).float().mean()),
             "saturated_fraction": float((cast(torch.Tensor, silent_sum) / count > 0.5).float().mean())}
    return torch.cat(feats), stats


def raw_features(data: SpikeDataset, beta: float = 1.0) -> torch.Tensor:
    """The same features computed on the input itself (the no-reservoir baseline)."""
    return torch.cat([spike_features(x, beta=beta) for x, _ in data.batches(512)])


def train_lsm(model: LSM, train: SpikeDataset, test: SpikeDataset, *, readout: str = "ridge",
              alphas: Sequence[float] = DEFAULT_ALPHAS, hidden: Sequence[int] = (),
              epochs: int = 100, lr: float = 1e-3, batch_size: int = 100, embed_dim: int = 64,
              temperature: float = 0.1, seed: int = 0, raw_baseline: bool = True,
              log: Callable[[str], None] = print) -> tuple[nn.Module, LSMResult]:
    """Fit a readout on the reservoir's features (module docstring); returns ``(model, result)``:
    the same ``LSM`` with its readout set (ridge) or an ``LSMClassifier`` (mlp, contrastive)."""
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
    if train.n_classes != model.config.n_outputs:
        raise ValueError(f"the data has {train.n_classes} classes, the LSM has n_outputs="
                         f"{model.config.n_outputs}")
    if train.n_steps != test.n_steps:
        raise ValueError(f"train and test sequences differ in length ({train.n_steps} vs {test.n_steps} steps)")
    start = time.perf_counter()
    result = LSMResult(readout)
    f_tr, stats = reservoir_features(model, train)
    f_te, _ = reservoir_features(model, test)
    result.reservoir = {**stats, "spectral_radius": model.diagnostics()["spectral_radius"]}
    log(f"reservoir: {model.config.size} {model.config.reservoir} neurons, rate {stats['mean_rate']:.3f} "
        f"spikes/neuron/step, {stats['silent_fraction']:.0%} silent, spectral radius "
        f"{result.reservoir['spectral_radius']:.2f}")
    if raw_baseline:
        beta = model.config.trace_beta
        base = select_alpha(raw_features(train, beta), train.labels, train.n_classes, alphas=alphas, seed=seed)
        result.raw_test_accuracy = base.accuracy(raw_features(test, beta), test.labels)
        log(f"raw-input ridge readout (no reservoir): test accuracy {result.raw_test_accuracy:.4f}")
    out: nn.Module
    if readout == "ridge":
        r = select_alpha(f_tr, train.labels, train.n_classes, alphas=alphas, seed=seed)
        model.set_readout(r.weight, r.bias, n_steps=train.n_steps)
        result.alpha = r.alpha
        result.train_accuracy = r.accuracy(f_tr, train.labels)
        result.test_accuracy = r.accuracy(f_te, test.labels)
        out = model
    else:
        torch.manual_seed(seed)
        last = embed_dim if readout == "contrastive" else train.n_classes
        cls = LSMClassifier(model.config, {"dims": [model.config.size, *hidden, last],
                                           "loss": "ce" if readout == "mlp" else "contrastive",
                                           "n_classes": train.n_classes, "temperature": temperature})
        cls.lsm.load_state_dict(model.state_dict())
        tl = train_head(cls.head, f_tr, torch.from_numpy(train.labels), epochs=epochs, lr=lr,
                        batch_size=batch_size, seed=seed)
        result.loss = tl.loss
        result.train_accuracy = head_accuracy(cls.head, f_tr, torch.from_numpy(train.labels))
        result.test_accuracy = head_accuracy(cls.head, f_te, torch.from_numpy(test.labels))
        out = cls
    result.seconds = time.perf_counter() - start
    log(f"LSM {readout} readout: train accuracy {result.train_accuracy:.4f}, test accuracy "
        f"{result.test_accuracy:.4f} ({result.seconds:.1f} s)")
    return out, result


# ------------------------------------------------------------------------------ command line
TRAIN_KEYS = {"readout", "alphas", "hidden", "epochs", "lr", "batch_size", "embed_dim", "temperature",
              "seed", "task", "max_samples", "n_steps", "dt_us", "dt", "crop", "polarity"}


def _given(value: Any, default: Any) -> Any:
    """``value`` unless it is None (0 is honoured, and the reader refuses it if it is wrong)."""
    return default if value is None else value


def load_task(data: str | Path | None, task: str = "digits", *, seed: int = 0,
              max_samples: int | None = None, n_steps: int | None = None, dt_us: int | None = None,
              dt: float | None = None, crop: Sequence[int] | None = (16, 16),
              polarity: str = "on") -> tuple[SpikeDataset, SpikeDataset, str]:
    """``(train, test, description)``: an N-MNIST folder (holding ``Train/`` and ``Test/``), an
    N-TIDIGITS HDF5 file, or (``data=None``) the offline stand-in ``task`` (``digits`` or ``audio``)."""
    from ...datasets.events import audio_event_task, digits_nmnist_task
    from ...datasets.nmnist import load_nmnist
    from ...datasets.ntidigits import load_ntidigits
    from ...progress import heartbeat

    crop_t = cast("tuple[int, int] | None", tuple(crop) if crop is not None else None)
    if data is not None:
        p = Path(data).expanduser()
        if p.is_dir():
            kw: dict[str, Any] = dict(n_steps=_given(n_steps, 50), dt_us=_given(dt_us, 6000), crop=crop_t, polarity=polarity,
                      max_samples=max_samples)
            return load_nmnist(p, "train", **kw), load_nmnist(p, "test", **kw), f"N-MNIST {p}"
        if p.is_file():
            kw2: dict[str, Any] = dict(n_steps=_given(n_steps, 129), dt=_given(dt, 0.01))
            return load_ntidigits(p, "train", **kw2), load_ntidigits(p, "test", **kw2), f"N-TIDIGITS {p}"
        raise ValueError(f"{p}: no such file or directory (an N-MNIST folder or an N-TIDIGITS .hdf5 file)")
    if task == "digits":
        with heartbeat("lsm: making the offline digits task (cached after the first run)"):
            tr, te = digits_nmnist_task(max_samples=max_samples, seed=seed, n_steps=_given(n_steps, 50),
                                        dt_us=_given(dt_us, 6000), crop=crop_t, polarity=polarity)
        return tr, te, "sklearn digits as saccade events (N-MNIST format stand-in)"
    if task == "audio":
        with heartbeat("lsm: making the offline audio task (cached after the first run)"):
            tr, te = audio_event_task(seed=seed, n_steps=_given(n_steps, 50), dt=_given(dt, 0.005))
        return tr, te, "temporal audio-like event task (N-TIDIGITS format stand-in)"
    raise ValueError(f"task must be 'digits' or 'audio', got {task!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="an N-MNIST folder or an N-TIDIGITS .hdf5 file (default: "
                                       "the offline stand-in of --task)")
    parser.add_argument("--readout", choices=list(READOUTS), help="readout (default ridge)")
    parser.add_argument("--task", choices=["digits", "audio"],
                        help="offline stand-in without --data (default digits)")
    parser.add_argument("--reservoir", choices=["gaussian", "maass"],
                        help="reservoir builder (default gaussian)")


def train(req: TrainRequest) -> Trained:
    """``neuro train lsm``: the config holds :class:`LSMConfig` keys plus :data:`TRAIN_KEYS`;
    ``--readout/--task/--reservoir`` override the config."""
    cfg = dict(req.config)
    for key in ("readout", "task", "reservoir"):
        if getattr(req.args, key, None):
            cfg[key] = getattr(req.args, key)
    opts = split_keys(cfg, TRAIN_KEYS)
    seed = int(opts.pop("seed", req.seed))
    task = opts.pop("task", "digits")
    data_kw = {k: opts.pop(k) for k in ("max_samples", "n_steps", "dt_us", "dt", "crop", "polarity") if k in opts}
    if req.epochs is not None:
        opts["epochs"] = req.epochs
    LSMConfig.from_dict({"seed": seed, **cfg})  # sizes and memory before the data is read
    train_set, test_set, what = load_task(req.data, task, seed=seed, **data_kw)
    lsm_cfg = LSMConfig.from_dict({"n_inputs": train_set.n_channels, "n_outputs": train_set.n_classes,
                                   "n_steps": train_set.n_steps, "seed": seed, **cfg})
    req.log(f"training lsm on {what}: {len(train_set)} train / {len(test_set)} test, "
            f"T={train_set.n_steps} steps, {train_set.n_channels} channels, "
            f"{train_set.n_classes} classes")
    model, result = train_lsm(LSM(lsm_cfg), train_set, test_set, seed=seed, log=req.log, **opts)
    raw = "n/a" if result.raw_test_accuracy is None else f"{result.raw_test_accuracy:.4f}"
    return Trained(model, {"data": what, "seed": seed, **result.as_dict()},
                   f"test accuracy {result.test_accuracy:.4f} ({result.readout} readout; raw input "
                   f"without reservoir {raw})")


def demo(*, seed: int, epochs: int, samples: int, log: Callable[[str], None] = print) -> Trained:
    """``neuro demo``'s LSM: a 200-neuron Gaussian reservoir and a ridge readout on the offline
    temporal event task (written in the N-TIDIGITS format and read back)."""
    log("liquid state machine: 200-neuron Gaussian reservoir + ridge readout on the offline "
        "temporal event task (N-TIDIGITS format)")
    train_set, test_set, what = load_task(None, "audio", seed=seed)
    model: nn.Module  # an LSM, then what train_lsm returns
    model = LSM(LSMConfig(n_inputs=train_set.n_channels, n_outputs=train_set.n_classes,
                          n_steps=train_set.n_steps, seed=seed))
    model, result = train_lsm(model, train_set, test_set, seed=seed, log=lambda s: None)
    x = np.ascontiguousarray(test_set.spikes[:samples].transpose(1, 0, 2)).astype(np.float32)
    return Trained(model, {"task": "audio_event_task", "seed": seed, **result.as_dict()},
                   f"{what}: test accuracy {result.test_accuracy:.3f} with the reservoir, "
                   f"{result.raw_test_accuracy:.3f} with the same readout on the raw input "
                   f"(chance {1 / train_set.n_classes:.3f})", test_inputs=x,
                   task=f"temporal event task, {train_set.n_classes} classes",
                   score=("accuracy", float(result.test_accuracy)),
                   test_labels=np.asarray(test_set.labels[:samples], np.int64))


__all__ = ["LSMResult", "READOUTS", "TRAIN_KEYS", "add_arguments", "demo", "load_task", "raw_features",
           "reservoir_features", "train", "train_lsm"]
