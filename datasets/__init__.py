"""Dataset readers for published formats and offline synthetic tasks (installs as ``neuro.datasets``).

Samples are stored ``[N, T, C]`` (uint8 spike counts); models take time-first batches
``[T, B, C]`` float32 (:func:`neuro.datasets.synthetic.SpikeDataset.batches`).

Names are imported on first use (PEP 562): reading a spike file (``load_spikes``) does not
import torch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> the module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    **dict.fromkeys(("dvs_gesture", "text", "wordlm"), ""),
    **dict.fromkeys(("audio_event_task", "digits_nmnist_task", "saccade_events"), ".events"),
    **dict.fromkeys(("default_spikes", "load_labels", "load_npz_array", "load_spikes",
                    "save_spikes"), ".io"),
    **dict.fromkeys(("events_to_frames", "load_nmnist", "read_nmnist_file", "write_nmnist_file"),
                    ".nmnist"),
    **dict.fromkeys(("load_ntidigits", "read_ntidigits", "write_ntidigits"), ".ntidigits"),
    **dict.fromkeys(("bin_spikes", "default_cache_dir", "download_file", "load_shd", "load_ssc",
                     "read_heidelberg"), ".shd"),
    **dict.fromkeys(("SpikeDataset", "delay_pattern_task", "spike_pattern_task"), ".synthetic"),
    **dict.fromkeys(("from_tonic", "tonic_dataset"), ".tonic_events"),
}

if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from . import dvs_gesture, text, wordlm
    from .events import audio_event_task, digits_nmnist_task, saccade_events
    from .io import default_spikes, load_labels, load_npz_array, load_spikes, save_spikes
    from .nmnist import events_to_frames, load_nmnist, read_nmnist_file, write_nmnist_file
    from .ntidigits import load_ntidigits, read_ntidigits, write_ntidigits
    from .shd import (
        bin_spikes,
        default_cache_dir,
        download_file,
        load_shd,
        load_ssc,
        read_heidelberg,
    )
    from .synthetic import SpikeDataset, delay_pattern_task, spike_pattern_task
    from .tonic_events import from_tonic, tonic_dataset


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'neuro.datasets' has no attribute {name!r}")
    module = _LAZY[name]
    value = (importlib.import_module(f".{name}", __name__) if not module
             else getattr(importlib.import_module(module, __name__), name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "dvs_gesture", "text", "wordlm",
    "SpikeDataset",
    "bin_spikes",
    "default_cache_dir",
    "default_spikes",
    "download_file",
    "load_shd",
    "load_npz_array",
    "load_labels",
    "load_spikes",
    "load_ssc",
    "read_heidelberg",
    "save_spikes",
    "delay_pattern_task", "spike_pattern_task",
    "audio_event_task", "digits_nmnist_task", "events_to_frames", "load_nmnist", "load_ntidigits",
    "read_nmnist_file", "read_ntidigits", "saccade_events", "write_nmnist_file", "write_ntidigits",
    "from_tonic", "tonic_dataset",
]
