"""The contract every model family meets, and the table entry that makes it one.

A **model family** (delay SNN, LSM, SpikeGPT, EGRU) is one folder ``neuro/models/<family>/``
holding its model classes, their config dataclasses, its training recipe and its family-only
helpers; its ``__init__.py`` exports ``FAMILY``, a :class:`Family`. ``neuro.models.FAMILIES``
lists them (one line each), and everything generic reads that table: ``neuro train NAME``,
``neuro demo``, the checkpoint loader. Nothing outside the folder names a family.

A **model class** (what a checkpoint rebuilds) mixes :class:`FamilyModel` into its
``nn.Module``:

* ``name``: the checkpoint's model name (``"delay-snn"``, ``"lsm"``, ``"lsm-projection"``);
* ``config``: a dataclass deriving from :class:`ModelConfig` (one shared ``from_dict`` that
  names unknown keys, and ``to_dict``), stored in the checkpoint as JSON;
  :meth:`FamilyModel.from_config` rebuilds the model from it;
* ``forward(x[T, B, ...], state=None) -> (out, state)`` like every neuro module;
* :meth:`FamilyModel.predict`: the model's decision for a batch (class labels ``[B]`` for the
  classifiers);
* :meth:`FamilyModel.export_view`: a context manager giving the module that deploys (what
  :func:`neuro.graph.from_module` lowers): eval mode, integer delays, only the part that runs on a
  target (the reservoir of an LSM with an ANN head). It restores the model on exit.

A **family** (:class:`Family`) adds how it trains: ``fit`` (the Python recipe), ``train`` (what
``neuro train NAME`` runs, from a :class:`TrainRequest` to a :class:`Trained`) with the command-line
options it adds (``add_arguments``), and optionally ``demo`` (its part of ``neuro demo``).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
from torch import Tensor, nn

if TYPE_CHECKING:
    from typing import Self  # Python 3.11 (the package supports 3.10)

C = TypeVar("C", bound="ModelConfig")


class ModelConfig:
    """Base of the config dataclasses: JSON in, JSON out, unknown keys named.

    ``SIZES`` names the fields that are sizes (an int or a list of ints: layer widths, counts):
    :meth:`from_dict` refuses one below 1 (an empty layer) and every integer value over
    ``NEURO_MAX_ELEMENTS``, before anything is built from them."""

    SIZES: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        """The config of JSON object ``d``: unknown keys, sizes, types and the declared memory
        (:meth:`check_memory`) are checked before anything is built from it."""
        if not isinstance(d, dict):
            raise ValueError(f"{cls.__name__}: a config is a JSON object, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {unknown}; known: {sorted(known)}")
        _check_sizes(cls.__name__, d, cls.SIZES)
        _check_types(cls, d)
        config = cls(**d)
        config.check_memory()
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    # -- declared memory: computed from the config alone, before the model is built ----------
    def n_elements(self) -> int:
        """Elements of the state dict (parameters and buffers) of the model this config builds,
        computed from the config alone (Python integers: nothing is allocated)."""
        raise NotImplementedError(f"{type(self).__name__} does not declare its size")

    def n_working(self) -> int:
        """Further float32-sized elements that building the model or running one sample needs
        beyond its state dict (temporary weight draws, per-step kernels, neuron state); 0 by
        default."""
        return 0

    def memory_bytes(self) -> int:
        """Bytes the model declares: ``4 * (n_elements() + n_working())`` (float32)."""
        return 4 * (self.n_elements() + self.n_working())

    def check_memory(self, where: str | None = None) -> None:
        """Raise :class:`~neuro.limits.LimitError` when :meth:`memory_bytes` is over
        ``NEURO_MAX_MODEL_BYTES`` (default: 16 GiB or less, see :mod:`neuro.limits`), so a
        config with huge but individually allowed widths fails before anything is allocated."""
        from ..limits import check_model_size

        n, w = self.n_elements(), self.n_working()
        detail = f"{n:,} parameter/buffer elements" + (f" + {w:,} working" if w else "")
        check_model_size(where or type(self).__name__, 4 * (n + w), detail)


def _check_types(cls: type, d: dict[str, Any]) -> None:
    """Refuse config values whose JSON type does not fit the field's annotation (a string where
    a layer width belongs would otherwise be a TypeError deep inside the model)."""
    import typing

    from ..validate import matches_annotation

    hints = typing.get_type_hints(cls)
    for key, value in d.items():
        if key in hints and not matches_annotation(value, hints[key]):
            raise ValueError(f"{cls.__name__}: {key} = {value!r} has the wrong type, expected "
                             f"{hints[key]}")


def _check_sizes(where: str, d: dict[str, Any], sizes: tuple[str, ...] = ()) -> None:
    """Refuse integer config values (layer widths, step counts, lists of them) over
    ``NEURO_MAX_ELEMENTS``, and fields named in ``sizes`` below 1, before anything is
    allocated from them."""
    from ..limits import LimitError, limit

    top = limit("NEURO_MAX_ELEMENTS")
    for key, v in d.items():
        values = v if isinstance(v, (list, tuple)) else [v]
        if key in sizes and any(isinstance(i, (int, float)) and not isinstance(i, bool)
                                and i < 1 for i in values):
            raise ValueError(f"{where}: {key} = {v!r}: sizes must be at least 1")
        for item in values:
            if isinstance(item, int) and not isinstance(item, bool) and abs(item) > top:
                raise LimitError(f"{where}: {key} = {item} is over the limit of {top} (raise "
                                 "NEURO_MAX_ELEMENTS to allow it)")


class FamilyModel:
    """Mixin for the model classes of a family (module docstring). ``nn.Module`` comes first in
    the bases: ``class DelaySNN(Sequential, FamilyModel)``."""

    name: ClassVar[str]
    config_class: ClassVar[type[ModelConfig]]
    config: ModelConfig

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> Self:
        """The model of checkpoint config ``cfg`` (weights still to be loaded)."""
        return cls(cls.config_class.from_dict(cfg))  # type: ignore[call-arg]

    def config_dict(self) -> dict[str, Any]:
        """What the checkpoint stores as the config (``from_config``'s input)."""
        return self.config.to_dict()

    def predict(self, x: Tensor) -> Tensor:
        """Class labels ``[B]``: argmax of the readout summed over time (override as needed)."""
        out, _ = self(x)  # type: ignore[operator]
        return out.sum(0).argmax(-1)

    def layer_names(self) -> dict[str, str]:
        """Readable names for the lowered graph's nodes, ``{module path: name}`` (e.g. ``"2"`` ->
        ``"hidden.0.lif"`` where the model is a flat ``Sequential``); the energy report names
        layers by them. Default: none (the module paths are the names)."""
        return {}

    def decide(self, out: Tensor) -> Tensor:
        """Class labels ``[B]`` from the deployed graph's output ``out [T, B, ...]`` in float
        units (what a hardware target's run gives, rescaled): the rule :meth:`predict` applies
        to the model's own output; default argmax of the sum over time. ``neuro verify`` and
        the demo score each target's decisions on labelled data with it."""
        return out.sum(0).argmax(-1)

    @contextlib.contextmanager
    def export_view(self) -> Iterator[nn.Module]:
        """The module that deploys, in eval mode; training mode is restored on exit."""
        with eval_mode(self):  # type: ignore[arg-type]
            yield self  # type: ignore[misc]


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """``module.eval()`` for the block, then its previous training flag back."""
    was = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was)


@contextlib.contextmanager
def export_view(model: nn.Module) -> Iterator[nn.Module]:
    """``model.export_view()`` for family models, eval mode for any other module."""
    view = getattr(model, "export_view", None)
    if callable(view):
        with view() as m:
            yield m
    else:
        with eval_mode(model) as m:
            yield m


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A JSON object from ``path``; ``ValueError`` naming the file otherwise."""
    from ..limits import LimitError
    from ..safeio import read_json

    try:
        cfg = read_json(path)  # size and depth limits, one-line errors naming the file
    except LimitError:
        raise
    except ValueError as exc:
        raise ValueError(f"{exc} (expected a JSON config file)") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: the config must be a JSON object")
    return cfg


@dataclass
class TrainRequest:
    """What ``neuro train NAME`` hands a family: the data path (None: the family's offline task),
    the JSON config (model keys and training keys mixed; the family splits them), the epochs and
    seed given on the command line (None / default when not given), the output directory and the
    parsed arguments (for the options the family added)."""

    data: str | None
    config: dict[str, Any]
    epochs: int | None
    seed: int
    out: Path
    args: argparse.Namespace = field(default_factory=argparse.Namespace)
    log: Callable[[str], None] = print


@dataclass
class Trained:
    """A trained model and what to store and say about it.

    ``info`` goes into the checkpoint (metrics, seed, data); ``summary`` is the line printed
    after training; ``test_inputs`` (``[T, B, N]`` float32 spikes, optional) are held-out samples
    ``neuro demo`` runs on the hardware targets (one-hot tokens for a language model),
    ``test_labels`` (``[B]`` int, optional) their classes (the demo scores each target's
    decisions on them); ``save`` is False on the non-main ranks of a distributed run (nothing
    is written there). ``task`` and ``score`` (``(metric name, value)``, e.g.
    ``("accuracy", 0.97)``, ``("bpc", 3.1)``) are the demo's summary-table entries (empty when
    not given)."""

    model: nn.Module
    info: dict[str, Any]
    summary: str
    test_inputs: np.ndarray | None = None
    save: bool = True
    task: str = ""
    score: tuple[str, float] | None = None
    test_labels: np.ndarray | None = None


@dataclass(frozen=True)
class Command:
    """A top-level command a family adds to ``neuro`` (e.g. ``neuro generate`` for a language
    model): its name, one line of help, its arguments and what it runs (returns the exit status)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], Any]


@dataclass(frozen=True)
class Family:
    """One model family's table entry (``neuro.models.FAMILIES``).

    ``models``: the classes a checkpoint of this family rebuilds (each has ``name`` and
    ``from_config``). ``fit(model, train, test, **options)``: the Python training recipe.
    ``train(request) -> Trained``: ``neuro train NAME``. ``add_arguments(parser)``: the options
    ``neuro train NAME`` adds. ``demo(seed=, epochs=, samples=) -> Trained``: the family's part of
    ``neuro demo`` (None: not in the demo); its ``test_inputs`` run on every target.
    ``read_config(value)``: what ``--config VALUE`` means (default: a JSON file; a family may
    accept preset names too). ``commands``: top-level commands it adds (:class:`Command`).
    """

    name: str
    summary: str
    models: tuple[Any, ...]  # the family's model classes (nn.Module subclasses mixing in FamilyModel)
    fit: Callable[..., Any]
    train: Callable[[TrainRequest], Trained]
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    demo: Callable[..., Trained] | None = None
    read_config: Callable[[str], dict[str, Any]] = read_config_file
    commands: tuple[Command, ...] = ()

    def run(self, request: TrainRequest) -> Path | None:
        """Train as ``neuro train NAME`` does and write ``<out>/model.safetensors`` (atomically;
        nothing on the non-main ranks of a distributed run, where it returns None)."""
        trained = self.train(request)
        if not trained.save:
            return None
        path = save_trained(Path(request.out) / "model.safetensors", trained)
        request.log(f"{trained.summary}; checkpoint: {path}")
        return path


def save_trained(path: str | Path, trained: Trained) -> Path:
    """Write a trained model's checkpoint: its family name, config and ``info``."""
    from ..checkpoint import save_checkpoint

    model = trained.model
    return save_checkpoint(path, model, name=model.name,  # type: ignore[arg-type]
                           config=model.config_dict(),  # type: ignore[operator]
                           info=trained.info)


def split_keys(cfg: dict[str, Any], keys: set[str] | frozenset[str]) -> dict[str, Any]:
    """Remove and return the entries of ``cfg`` whose key is in ``keys`` (training options)."""
    return {k: cfg.pop(k) for k in list(cfg) if k in keys}


__all__ = ["Command", "Family", "FamilyModel", "ModelConfig", "TrainRequest", "Trained", "eval_mode",
           "export_view", "read_config_file", "save_trained", "split_keys"]
