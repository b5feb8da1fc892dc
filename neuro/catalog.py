"""What the command line lists before it imports the model families (and with them torch).

``neuro --help``, ``neuro info`` and ``neuro setup`` must start in well under a second, so the
top-level parser names the families and the commands they add from this table; the families
themselves (``neuro.models.FAMILIES``) are imported only for ``neuro train`` and the family
commands. ``tests/neuro/test_cli_startup.py`` keeps this table equal to ``FAMILIES``.
"""
from __future__ import annotations

#: family name -> its one-line summary (``Family.summary``), in ``FAMILIES`` order
FAMILY_SUMMARIES: dict[str, str] = {
    "delay-snn": "LIF network with learnable synaptic delays (SHD with --data, else the offline "
                 "delay task)",
    "lsm": "liquid state machine: fixed reservoir + trained readout (N-MNIST, N-TIDIGITS or "
           "offline)",
    "spikegpt": "SpikeGPT: spiking RWKV language model (binary embedding, LIF sub-layer outputs)",
    "egru": "event-based GRU (Subramoney et al. 2023): word-level language model, DVS gesture net",
}
#: top-level command a family adds -> its one-line help (``Command.help``)
FAMILY_COMMANDS: dict[str, str] = {
    "generate": "stream text from a SpikeGPT checkpoint",
}

__all__ = ["FAMILY_COMMANDS", "FAMILY_SUMMARIES"]
