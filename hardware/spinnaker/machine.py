"""The SpiNNaker machine model: chips on a 2-D triangular torus, application cores, links, limits.

Geometry (SpiNNaker 1): chip ``(x, y)`` of a ``width x height`` torus has six links, numbered as
on the hardware (``link d`` leads to ``(x + dx, y + dy)`` modulo the torus)::

    0 E (+1, 0)   1 NE (+1, +1)   2 N (0, +1)   3 W (-1, 0)   4 SW (-1, -1)   5 S (0, -1)

Link ``(d + 3) % 6`` is the opposite of link ``d``: a packet that arrives through link ``d`` of the
sender and matches no router entry leaves through the same direction ``d`` (default routing, a
straight line). Chips are numbered in raster order ``index = y * width + x``; a core is
``(chip, c)`` with ``c`` in ``0 .. cores_per_chip - 1`` (the application cores; a real chip has 18
ARM cores of which one is the monitor and one a spare). A global core number is
``chip_index * cores_per_chip + c``; a global link number is ``chip_index * 6 + d``.

Limits (all configurable; the defaults are the published SpiNNaker 1 figures as recalled from
Furber et al., Proc. IEEE 2014, and the sPyNNaker documentation, not checked against a datasheet):

* ``neurons_per_core`` (256): atoms (neurons, spike sources) one core simulates; at most 2048, the
  11-bit post-synaptic index of the synaptic word.
* ``row_memory_per_core`` (8 MiB): bytes of synaptic rows (address list + synaptic words) one core
  may own. SpiNNaker 1 keeps rows in the chip's 128 MiB SDRAM, shared by 16 application cores;
  set 128 KiB to model a SpiNNaker 2 PE's local SRAM.
* ``router_entries`` (1024): key/mask entries of one chip's router table (the TCAM).
* ``link_capacity_per_tick`` (6250): packets one link carries per 1 ms tick; packets beyond it are
  dropped. 6250 = 250 Mbit/s / 40-bit packets (recalled link bandwidth); ``None`` = unlimited.
* ``max_delay_stages`` (8): 16-tick stages of a delay extension; the longest synaptic delay is
  ``16 x (1 + max_delay_stages)`` ticks (144 by default).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: (dx, dy) of links 0..5
DIRECTIONS: tuple[tuple[int, int], ...] = ((1, 0), (1, 1), (0, 1), (-1, 0), (-1, -1), (0, -1))
LINK_NAMES: tuple[str, ...] = ("E", "NE", "N", "W", "SW", "S")
#: ring-buffer slots of a core: native synaptic delays are 1..16 ticks (4 bits in the word)
RING_SLOTS = 16
#: bits of the post-synaptic neuron index in a synaptic word
INDEX_BITS = 11


@dataclass(frozen=True)
class Machine:
    """A SpiNNaker-style machine (see the module docstring for the meaning of every field)."""

    width: int = 8
    height: int = 8
    cores_per_chip: int = 16
    neurons_per_core: int = 256
    row_memory_per_core: int = 8 * 2**20
    router_entries: int = 1024
    link_capacity_per_tick: int | None = 6250
    max_delay_stages: int = 8

    def __post_init__(self) -> None:
        limits = {"width": (1, 256), "height": (1, 256), "cores_per_chip": (1, 18),
                  "neurons_per_core": (1, 1 << INDEX_BITS), "row_memory_per_core": (4, 1 << 40),
                  "router_entries": (1, 1 << 20), "max_delay_stages": (0, 62)}
        for name, (lo, hi) in limits.items():
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ValueError(f"Machine: {name} must be an integer in [{lo}, {hi}], got {v!r}")
        cap = self.link_capacity_per_tick
        if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 0):
            raise ValueError(f"Machine: link_capacity_per_tick must be a non-negative integer or "
                             f"None, got {cap!r}")

    # -- sizes --------------------------------------------------------------------------------
    @property
    def n_chips(self) -> int:
        return self.width * self.height

    @property
    def n_cores(self) -> int:
        return self.n_chips * self.cores_per_chip

    @property
    def max_delay(self) -> int:
        """Longest synaptic delay in ticks: 16 native slots plus 16 per delay-extension stage."""
        return RING_SLOTS * (1 + self.max_delay_stages)

    # -- geometry -----------------------------------------------------------------------------
    def chip_xy(self, index: int) -> tuple[int, int]:
        return index % self.width, index // self.width

    def chip_index(self, x: int, y: int) -> int:
        return (y % self.height) * self.width + (x % self.width)

    def neighbour(self, chip: int, d: int) -> int:
        """The chip at the far end of link ``d`` of ``chip`` (chip indices)."""
        x, y = self.chip_xy(chip)
        dx, dy = DIRECTIONS[d]
        return self.chip_index(x + dx, y + dy)

    def core_name(self, core: int) -> tuple[int, int, int]:
        """``(x, y, c)`` of global core number ``core``."""
        x, y = self.chip_xy(core // self.cores_per_chip)
        return x, y, core % self.cores_per_chip

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Machine:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"Machine: unknown fields {unknown}")
        return cls(**d)

    def describe(self) -> str:
        cap = ("unlimited" if self.link_capacity_per_tick is None
               else f"{self.link_capacity_per_tick} packets")
        return (f"{self.width}x{self.height} chips (triangular torus) x {self.cores_per_chip} "
                f"application cores = {self.n_cores} cores; {self.neurons_per_core} neurons per "
                f"core; {self.row_memory_per_core} bytes of synaptic rows per core; "
                f"{self.router_entries} router entries per chip; link capacity {cap} per tick; "
                f"delays 1..{self.max_delay} ticks ({RING_SLOTS} ring-buffer slots + "
                f"{self.max_delay_stages} delay-extension stages)")


__all__ = ["DIRECTIONS", "INDEX_BITS", "LINK_NAMES", "Machine", "RING_SLOTS"]
