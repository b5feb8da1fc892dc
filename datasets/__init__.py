"""Dataset readers for published formats and offline synthetic tasks (installs as ``neuro.datasets``).

Samples are stored ``[N, T, C]`` (uint8 spike counts); models take time-first batches
``[T, B, C]`` float32 (:func:`neuro.datasets.synthetic.SpikeDataset.batches`).
"""
from . import dvs_gesture, text, wordlm
from .events import audio_event_task, digits_nmnist_task, saccade_events
from .io import default_spikes, load_npz_array, load_spikes, save_spikes
from .nmnist import events_to_frames, load_nmnist, read_nmnist_file, write_nmnist_file
from .ntidigits import load_ntidigits, read_ntidigits, write_ntidigits
from .shd import bin_spikes, default_cache_dir, download_file, load_shd, load_ssc, read_heidelberg
from .synthetic import SpikeDataset, delay_pattern_task, spike_pattern_task

__all__ = [
    "dvs_gesture", "text", "wordlm",
    "SpikeDataset",
    "bin_spikes",
    "default_cache_dir",
    "default_spikes",
    "download_file",
    "load_shd",
    "load_npz_array",
    "load_spikes",
    "load_ssc",
    "read_heidelberg",
    "save_spikes",
    "delay_pattern_task", "spike_pattern_task",
    "audio_event_task", "digits_nmnist_task", "events_to_frames", "load_nmnist", "load_ntidigits",
    "read_nmnist_file", "read_ntidigits", "saccade_events", "write_nmnist_file", "write_ntidigits",
]
