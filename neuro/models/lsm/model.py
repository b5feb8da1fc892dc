"""Liquid state machines: fixed random spiking reservoirs of the shared LIF neuron and a readout.

**Reservoir.** ``N`` LIF neurons (``neuro.neurons.LIF``) inside ``neuro.layers.Recurrent``; per
step ``t`` (time in steps, ``dt`` seconds each), with input ``u[t]`` (``[B, n_inputs]``, 0/1 or
counts) and the population's spikes of the previous step::

    h[t] = beta * v[t-1] + W_in u[t] + W_rec s[t-1]
    s[t] = H(h[t] - threshold)                       (H(0) = 1)
    v[t] = h[t] * (1 - s[t])   (reset "zero")   or   h[t] - threshold * s[t]   ("subtract")

``W_rec[i, j]`` is the weight from neuron ``j`` to neuron ``i``; the recurrent input arrives one
step late (the one-step synaptic delay of Lava, SpiNNaker and Brian2 with ``delay = dt``). The
weights are fixed (buffers, no gradient) and drawn from ``seed``. Two builders:

* ``"gaussian"`` (the resistive-memory LSM of Lin et al. 2025): ``W_in = input_scale * N(0, 1)``
  and ``W_rec = recurrent_scale * N(0, 1)`` on a random ``density`` fraction of the pairs, as the
  stochastic conductances of an RRAM array give them; the reference uses 200 neurons, decay 0.9,
  threshold 5.0 and ``const = 0.07`` for N-MNIST.
* ``"maass"`` (Maass, Natschlager, Markram 2002): neurons on the integer 3-D ``grid`` (the
  paper's column is 15 x 3 x 3 = 135 neurons; the config default 10 x 5 x 4 gives 200), a random
  ``frac_inhibitory`` of them inhibitory; ``P(a -> b) = C[type(a) type(b)] exp(-(D(a, b) / lam)^2)``
  (``D`` Euclidean grid distance, no self-connections), weights of mean ``|A|`` (gamma-distributed,
  coefficient of variation ``weight_cv``) times ``weight_scale``, signed by the presynaptic type
  (Dale's law); inputs as in the gaussian builder (signed, ``input_scale * N(0, 1)`` on an
  ``input_density`` fraction: with excitatory-only inputs the column's spike counts lose most of
  the input's order information on the temporal stand-in). Dynamic (depressing/facilitating) synapses, PSC time constants, transmission
  delays other than one step and background currents of the original are not modelled. Maass
  used refractory periods of 3 ms (E) / 2 ms (I): set ``refractory`` (steps, one value). The
  integer formats of the graph IR reject refractory neurons today, so the exportable default
  is ``refractory = 0``.

``spectral_radius`` (optional) rescales ``W_rec`` so its largest eigenvalue modulus equals it.
``device`` (a :class:`.device_model.DeviceModel` as a dict) programs the weights through the
resistive-memory model (variability and stuck-at faults change the stored weights; read noise is
applied only by :meth:`LSM.reservoir_spikes` with ``noisy=True``).

**Readout.** A ``Linear(N, n_outputs)`` and an ``LI`` integrator with decay ``trace_beta``: the
integrator's membrane at the last step is ``W f + b`` where ``f = sum_t trace_beta^(T-1-t) s[t]``
(``trace_beta = 1``: spike counts). :meth:`LSM.set_readout` stores a readout fitted on ``f`` (for
example by ridge regression, :mod:`.readout`) with the per-step bias
``b / sum_{k<T} trace_beta^k`` for ``T = n_steps``, so ``logits(x) = W f + b`` exactly for
sequences of ``n_steps`` steps. The whole model lowers to the graph IR as
``input -> Linear(W_in) -> LIF``, ``LIF -> Linear(W_rec) -> LIF``, ``LIF -> Affine -> LI``.

Example::

    >>> from neuro.models.lsm import LSM, LSMConfig
    >>> model = LSM(LSMConfig(n_inputs=64, size=200, n_outputs=11))
    >>> spikes = model.reservoir_spikes(x)        # x [T, B, 64] -> [T, B, 200]
"""
from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from ...layers import Linear, Recurrent, Sequential
from ...limits import check_model_size
from ...neurons import LI, LIF
from ..base import FamilyModel, ModelConfig, eval_mode
from .device_model import DeviceModel

RESERVOIRS = ("gaussian", "maass")
CONNECTION_TYPES = ("EE", "EI", "IE", "II")  # presynaptic type, then postsynaptic type
#: Maass et al. 2002 (reference spec section 4.2, standard values from memory)
MAASS_CONNECTIVITY = {"EE": 0.3, "EI": 0.2, "IE": 0.4, "II": 0.1}
MAASS_STRENGTHS = {"EE": 30.0, "EI": 60.0, "IE": -19.0, "II": -19.0}


# ------------------------------------------------------------------------------ weight builders
def _check_prob(name: str, v: float, *, open_low: bool = False) -> None:
    ok = isinstance(v, (int, float)) and math.isfinite(v) and (0 < v <= 1 if open_low else 0 <= v <= 1)
    if not ok:
        raise ValueError(f"{name} is a probability and must lie in {'(0, 1]' if open_low else '[0, 1]'}, "
                         f"got {v!r}")


def spectral_radius(w: Tensor | np.ndarray) -> float:
    """Largest eigenvalue modulus of a square matrix (float64 eigen-decomposition)."""
    a = np.asarray(w.detach().cpu() if isinstance(w, Tensor) else w, np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"spectral_radius needs a square matrix, got shape {a.shape}")
    return float(np.abs(np.linalg.eigvals(a)).max()) if a.size else 0.0


def scale_to_spectral_radius(w: Tensor, rho: float) -> Tensor:
    """``w`` rescaled so that its spectral radius is ``rho`` (> 0)."""
    if not (isinstance(rho, (int, float)) and math.isfinite(rho) and rho > 0):
        raise ValueError(f"spectral_radius must be a finite number > 0, got {rho!r}")
    r = spectral_radius(w)
    if r < 1e-12:
        raise ValueError("spectral_radius: the recurrent matrix has spectral radius 0 "
                         "(no recurrent loops), it cannot be rescaled")
    return w * float(rho / r)


def grid_positions(grid: tuple[int, int, int] | list[int]) -> Tensor:
    """Integer coordinates ``[N, 3]`` of the grid points, x fastest (``N = prod(grid)``)."""
    if len(grid) != 3 or any(not isinstance(g, int) or g <= 0 for g in grid):
        raise ValueError(f"grid must be three positive ints, got {grid!r}")
    zz, yy, xx = torch.meshgrid(torch.arange(grid[2]), torch.arange(grid[1]), torch.arange(grid[0]),
                                indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1), zz.reshape(-1)], 1).to(torch.float64)


def connection_probability(positions: Tensor, excitatory: Tensor, connectivity: dict[str, float],
                           lam: float) -> Tensor:
    """``P[b, a]``: probability of a synapse from ``a`` to ``b`` (``C exp(-(D/lam)^2)``, diagonal 0)."""
    if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam > 0):
        raise ValueError(f"lam (connection length, grid units) must be > 0, got {lam!r}")
    for k in CONNECTION_TYPES:
        if k not in connectivity:
            raise ValueError(f"connectivity needs the keys {CONNECTION_TYPES}, missing {k!r}")
        _check_prob(f"connectivity[{k!r}]", connectivity[k])
    unknown = sorted(set(connectivity) - set(CONNECTION_TYPES))
    if unknown:
        raise ValueError(f"connectivity: unknown keys {unknown}; known: {list(CONNECTION_TYPES)}")
    d2 = torch.cdist(positions, positions).pow(2)  # [post, pre] (symmetric)
    pre_e, post_e = excitatory[None, :], excitatory[:, None]
    c = torch.where(pre_e & post_e, connectivity["EE"],
                    torch.where(pre_e & ~post_e, connectivity["EI"],
                                torch.where(~pre_e & post_e, connectivity["IE"], connectivity["II"])))
    p = c.to(torch.float64) * torch.exp(-d2 / (lam * lam))
    p.fill_diagonal_(0.0)
    return p


@dataclass
class MaassColumn:
    """A Maass-style column: ``w_rec [N, N]`` (post x pre), ``positions [N, 3]``, ``excitatory [N]``."""

    w_rec: Tensor
    positions: Tensor
    excitatory: Tensor


def maass_column(grid: tuple[int, int, int] | list[int] = (15, 3, 3), *, frac_inhibitory: float = 0.2,
                 lam: float = 2.0, connectivity: dict[str, float] | None = None,
                 strengths: dict[str, float] | None = None, weight_cv: float = 0.7,
                 weight_scale: float = 1.0, seed: int = 0) -> MaassColumn:
    """Build a Maass-style column (module docstring); deterministic for a given ``seed``."""
    connectivity = dict(MAASS_CONNECTIVITY if connectivity is None else connectivity)
    strengths = dict(MAASS_STRENGTHS if strengths is None else strengths)
    _check_prob("frac_inhibitory", frac_inhibitory)
    if not (math.isfinite(weight_cv) and weight_cv > 0):
        raise ValueError(f"weight_cv must be > 0, got {weight_cv!r}")
    if not math.isfinite(weight_scale):
        raise ValueError(f"weight_scale must be finite, got {weight_scale!r}")
    missing = [k for k in CONNECTION_TYPES if k not in strengths]
    if missing:
        raise ValueError(f"strengths needs the keys {CONNECTION_TYPES}, missing {missing}")
    pos = grid_positions(list(grid))
    n = pos.shape[0]
    rng = np.random.default_rng(seed)
    excitatory = torch.ones(n, dtype=torch.bool)
    n_inh = int(round(frac_inhibitory * n))
    excitatory[torch.from_numpy(rng.choice(n, n_inh, replace=False)).long()] = False
    p = connection_probability(pos, excitatory, connectivity, lam)
    mask = torch.from_numpy(rng.random((n, n))) < p
    shape = 1.0 / weight_cv**2
    mag = torch.from_numpy(rng.gamma(shape, weight_cv**2, size=(n, n)))  # mean 1
    pre_e, post_e = excitatory[None, :], excitatory[:, None]
    a = torch.where(pre_e & post_e, abs(strengths["EE"]),
                    torch.where(pre_e & ~post_e, abs(strengths["EI"]),
                                torch.where(~pre_e & post_e, abs(strengths["IE"]), abs(strengths["II"]))))
    sign = torch.where(pre_e, 1.0, -1.0).to(torch.float64)
    w = (a.to(torch.float64) * mag * sign * weight_scale * mask).to(torch.float32)
    return MaassColumn(w, pos, excitatory)


def gaussian_weights(rows: int, cols: int, scale: float, density: float, rng: np.random.Generator) -> Tensor:
    """``scale * N(0, 1)`` on a random ``density`` fraction of the entries (zero elsewhere)."""
    _check_prob("density", density, open_low=True)
    if not (math.isfinite(scale) and scale >= 0):
        raise ValueError(f"weight scale must be a finite number >= 0, got {scale!r}")
    w = rng.standard_normal((rows, cols)) * scale
    if density < 1:
        w = w * (rng.random((rows, cols)) < density)
    return torch.from_numpy(w.astype(np.float32))


# ------------------------------------------------------------------------------ the model
@dataclass
class LSMConfig(ModelConfig):
    """Hyperparameters of :class:`LSM` (JSON-serialisable; stored in checkpoints).

    Units: ``beta``/``trace_beta`` are per-step decay factors, ``refractory`` and ``n_steps`` are
    steps, ``dt`` is seconds per step, weights and ``threshold`` share the membrane's unit.
    """

    SIZES: ClassVar[tuple[str, ...]] = ("n_inputs", "size", "n_outputs", "grid", "n_steps")

    n_inputs: int = 256
    size: int = 200
    n_outputs: int = 10
    reservoir: str = "gaussian"
    beta: float = 0.9
    threshold: float = 5.0
    reset: str = "zero"
    refractory: int = 0
    input_scale: float = 1.0
    recurrent_scale: float = 0.3
    input_density: float = 1.0
    density: float = 1.0
    spectral_radius: float | None = None
    # maass-only
    grid: list[int] = field(default_factory=lambda: [10, 5, 4])
    lam: float = 2.0
    frac_inhibitory: float = 0.2
    connectivity: dict[str, float] = field(default_factory=lambda: dict(MAASS_CONNECTIVITY))
    strengths: dict[str, float] = field(default_factory=lambda: dict(MAASS_STRENGTHS))
    weight_cv: float = 0.7
    weight_scale: float = 0.02
    # readout
    trace_beta: float = 1.0
    n_steps: int = 50
    device: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    dt: float = 1e-3

    def __post_init__(self) -> None:
        for k in ("n_inputs", "size", "n_outputs", "n_steps"):
            v = getattr(self, k)
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"LSMConfig.{k} must be a positive int, got {v!r}")
        if self.reservoir not in RESERVOIRS:
            raise ValueError(f"LSMConfig.reservoir must be one of {RESERVOIRS}, got {self.reservoir!r}")
        for k in ("beta", "trace_beta"):
            v = getattr(self, k)
            if not (isinstance(v, (int, float)) and 0 <= v <= 1):
                raise ValueError(f"LSMConfig.{k} is a per-step decay and must lie in [0, 1], got {v!r}")
        if not (isinstance(self.threshold, (int, float)) and math.isfinite(self.threshold) and self.threshold > 0):
            raise ValueError(f"LSMConfig.threshold must be > 0, got {self.threshold!r}")
        _check_prob("LSMConfig.input_density", self.input_density, open_low=True)
        _check_prob("LSMConfig.density", self.density, open_low=True)
        _check_prob("LSMConfig.frac_inhibitory", self.frac_inhibitory)
        for k in ("input_scale", "recurrent_scale"):
            v = getattr(self, k)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"LSMConfig.{k} must be a finite number >= 0, got {v!r}")
        if self.spectral_radius is not None and not (
                isinstance(self.spectral_radius, (int, float)) and math.isfinite(self.spectral_radius)
                and self.spectral_radius > 0):
            raise ValueError(f"LSMConfig.spectral_radius must be a finite number > 0 (or null), "
                             f"got {self.spectral_radius!r}")
        if self.reservoir == "maass" and math.prod(self.grid) != self.size:
            raise ValueError(f"LSMConfig: a maass reservoir has one neuron per grid point: size "
                             f"{self.size} != prod(grid {self.grid}) = {math.prod(self.grid)}")
        DeviceModel.from_dict(self.device)  # validates

    def n_elements(self) -> int:
        """``w_rec [N, N]``, ``w_in [N, n_inputs]``, the readout (weights and bias) and the
        neurons' scalars."""
        n, m, c = self.size, self.n_inputs, self.n_outputs
        return n * n + n * m + c * n + c + 3

    def n_working(self) -> int:
        """The float64 draws :func:`build_weights` makes (normal values, density mask and
        their product: about six float32-sized elements per weight) and one sample's state."""
        n, m = self.size, self.n_inputs
        return 6 * (n * n + n * m) + 2 * n

    @property
    def device_model(self) -> DeviceModel:
        return DeviceModel.from_dict(self.device)


def build_weights(config: LSMConfig) -> tuple[Tensor, Tensor, Tensor]:
    """``(w_in [N, n_inputs], w_rec [N, N], excitatory [N] bool)`` for ``config`` (ideal weights,
    before the device model)."""
    rng = np.random.default_rng(config.seed)
    n, m = config.size, config.n_inputs
    if config.reservoir == "gaussian":
        w_in = gaussian_weights(n, m, config.input_scale, config.input_density, rng)
        w_rec = gaussian_weights(n, n, config.recurrent_scale, config.density, rng)
        exc = torch.ones(n, dtype=torch.bool)
    else:
        col = maass_column(config.grid, frac_inhibitory=config.frac_inhibitory, lam=config.lam,
                           connectivity=config.connectivity, strengths=config.strengths,
                           weight_cv=config.weight_cv, weight_scale=config.weight_scale,
                           seed=int(rng.integers(1 << 31)))
        w_rec, exc = col.w_rec, col.excitatory
        w_in = gaussian_weights(n, m, config.input_scale, config.input_density, rng)
    if config.spectral_radius is not None:
        w_rec = scale_to_spectral_radius(w_rec, config.spectral_radius)
    return w_in, w_rec, exc


def _head_elements(head: dict[str, Any]) -> int:
    """Elements of the :class:`~neuro.models.lsm.readout.ProjectionHead` that ``head`` (its
    ``config_dict``) describes: normalisation buffers, the MLP and the class embeddings."""
    dims = head["dims"]
    if not isinstance(dims, list) or not all(isinstance(d, int) and not isinstance(d, bool)
                                             for d in dims) or len(dims) < 2:
        raise ValueError(f"bad lsm-projection config (head dims must be a list of at least two "
                         f"integers, got {dims!r})")
    n_classes = head.get("n_classes") or 0
    classes = int(n_classes) * dims[-1] if head.get("loss") == "contrastive" else 0
    return 2 * dims[0] + sum(a * b + b for a, b in zip(dims[:-1], dims[1:])) + classes


class LSMClassifier(nn.Module, FamilyModel):
    """A reservoir (:class:`LSM`, whose own linear readout is unused) and a trained projection
    head (:class:`neuro.models.lsm.readout.ProjectionHead`) on its spike-count/trace features.

    Only the reservoir lowers to the graph IR: :meth:`export_view` is the reservoir alone (graph
    output: its spikes); the head is an ANN that runs on the host on the features of those spikes,
    whichever target produced them.
    """

    name = "lsm-projection"

    def __init__(self, lsm_config: LSMConfig, head_config: dict[str, Any]) -> None:
        from .readout import ProjectionHead

        super().__init__()
        self.lsm = LSM(lsm_config)
        self.head = ProjectionHead(head_config["dims"], loss=head_config.get("loss", "ce"),
                                   n_classes=head_config.get("n_classes"),
                                   temperature=head_config.get("temperature", 0.1))

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> LSMClassifier:
        """The classifier of checkpoint config ``{"lsm": ..., "head": {"dims": ...}}``; the
        declared memory of both parts is checked before either is built."""
        try:
            lsm_config = LSMConfig.from_dict(cfg["lsm"])
            head = cfg["head"]
            check_model_size("lsm-projection", lsm_config.memory_bytes()
                             + 4 * _head_elements(head), "reservoir and projection head")
            return cls(lsm_config, head)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"bad lsm-projection config ({exc})") from None

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, None]:
        """Class scores ``[B, C]`` (not a time series: the head sees whole-sequence features)."""
        if state is not None:
            raise ValueError("LSMClassifier runs whole sequences from a zero state")
        from .readout import spike_features

        f = spike_features(self.lsm.reservoir_spikes(x), beta=self.lsm.config.trace_beta)
        return self.head.logits(f), None

    def logits(self, x: Tensor) -> Tensor:
        return self(x)[0]

    def predict(self, x: Tensor) -> Tensor:
        return self.logits(x).argmax(-1)

    def decide(self, out: Tensor) -> Tensor:
        """Class labels ``[B]`` from reservoir spikes ``out [T, B, N]`` (the deployed graph's
        output, from any target): the head on their features, as in :meth:`forward`."""
        from .readout import spike_features

        with torch.no_grad():
            f = spike_features(out.float(), beta=self.lsm.config.trace_beta)
            return self.head.logits(f).argmax(-1)

    @contextlib.contextmanager
    def export_view(self) -> Iterator[nn.Module]:
        """The part that lowers to the graph IR: the reservoir alone (shares its weights)."""
        with eval_mode(self):
            yield Sequential(OrderedDict(reservoir=self.lsm.reservoir))

    def config_dict(self) -> dict[str, Any]:
        return {"lsm": self.lsm.config_dict(), "head": self.head.config_dict()}


class LSM(Sequential, FamilyModel):
    """Reservoir (``Recurrent`` of LIF) -> ``Linear`` readout -> ``LI`` integrator (module docstring).

    Children: ``reservoir``, ``readout``, ``integrator``. ``forward(x[T, B, n_inputs])`` returns the
    integrator's membrane ``[T, B, n_outputs]`` and the states, like every neuro model.
    """

    name = "lsm"
    config_class = LSMConfig
    config: LSMConfig
    # submodules and buffer registered in __init__
    reservoir: Recurrent
    readout: Linear
    integrator: LI
    excitatory: Tensor

    def __init__(self, config: LSMConfig | None = None) -> None:
        config = config or LSMConfig()
        w_in, w_rec, exc = build_weights(config)
        dev = config.device_model
        if dev.variability or dev.stuck_off or dev.stuck_on:
            g = torch.Generator().manual_seed(config.seed + 7919)
            w_in, w_rec = dev.program(w_in, g), dev.program(w_rec, g)
        neuron = LIF(beta=config.beta, threshold=config.threshold, reset=config.reset,
                     refractory=config.refractory, dt=config.dt)
        reservoir = Recurrent(config.n_inputs, neuron, size=config.size, w_in=w_in, w_rec=w_rec,
                              learn_recurrent=False)
        reservoir.input.weight.requires_grad_(False)
        readout = Linear(config.size, config.n_outputs, bias=True)
        with torch.no_grad():
            readout.weight.zero_()
            readout.bias.zero_()
        super().__init__(OrderedDict(reservoir=reservoir, readout=readout,
                                     integrator=LI(beta=config.trace_beta, dt=config.dt)))
        self.register_buffer("excitatory", exc, persistent=False)
        self.config = config

    # -- reservoir -------------------------------------------------------------------------------
    @property
    def w_in(self) -> Tensor:
        return self.reservoir.input.weight

    @property
    def w_rec(self) -> Tensor:
        return self.reservoir.w_rec

    @torch.no_grad()
    def reservoir_spikes(self, x: Tensor, *, noisy: bool = False,
                         generator: torch.Generator | None = None) -> Tensor:
        """Reservoir spikes ``[T, B, N]`` for input ``x [T, B, n_inputs]``.

        ``noisy=True`` reads both weight arrays through the device model's read noise at every
        step (fresh noise per step and sample); otherwise this is exactly the module's (and the
        lowered graph's) reservoir.
        """
        if x.dim() != 3 or x.shape[-1] != self.config.n_inputs:
            raise ValueError(f"LSM: input must be [T, B, {self.config.n_inputs}], got {tuple(x.shape)}")
        res = self.reservoir
        dev = self.config.device_model
        if not (noisy and dev.read_noise):
            return res(x)[0]
        state = res.init_state(x.shape[1:-1], device=x.device, dtype=x.dtype)
        outs = []
        for t in range(x.shape[0]):
            cur = dev.read(x[t] @ self.w_in.t(), self.w_in, x[t], generator)
            rec = dev.read(state.spikes @ self.w_rec.t(), self.w_rec, state.spikes, generator)
            s, st = res.neuron.step(cur + rec, state.neuron)
            state = type(state)(st, s)
            outs.append(s)
        return torch.stack(outs)

    # -- readout ---------------------------------------------------------------------------------
    def bias_gain(self, n_steps: int | None = None) -> float:
        """``sum_{k < T} trace_beta^k``: how the per-step bias adds up in the integrator."""
        T = self.config.n_steps if n_steps is None else n_steps
        b = float(self.integrator.beta)
        return float(T) if b == 1.0 else (1 - b**T) / (1 - b)

    @torch.no_grad()
    def set_readout(self, weight: Tensor | np.ndarray, bias: Tensor | np.ndarray,
                    n_steps: int | None = None) -> None:
        """Store a readout ``logits = weight @ f + bias`` fitted on traces ``f`` of ``n_steps`` steps."""
        w = torch.as_tensor(np.asarray(weight), dtype=torch.float32)
        b = torch.as_tensor(np.asarray(bias), dtype=torch.float32)
        if tuple(w.shape) != tuple(self.readout.weight.shape) or tuple(b.shape) != (self.config.n_outputs,):
            raise ValueError(f"LSM.set_readout: weight must be {tuple(self.readout.weight.shape)} and bias "
                             f"({self.config.n_outputs},), got {tuple(w.shape)} and {tuple(b.shape)}")
        if n_steps is not None:
            self.config.n_steps = int(n_steps)
        self.readout.weight.copy_(w)
        self.readout.bias.copy_(b / self.bias_gain())

    def logits(self, x: Tensor) -> Tensor:
        """Class scores ``[B, n_outputs]``: the integrator's membrane at the last step."""
        out, _ = self(x)
        return out[-1]

    def decide(self, out: Tensor) -> Tensor:
        """Class labels ``[B]`` from the integrator's membrane ``out [T, B, C]``: its last step."""
        return out[-1].argmax(-1)

    def predict(self, x: Tensor) -> Tensor:
        return self.logits(x).argmax(-1)

    # -- diagnostics -----------------------------------------------------------------------------
    @torch.no_grad()
    def diagnostics(self, x: Tensor | None = None) -> dict[str, Any]:
        """Spectral radius, weight statistics, E/I counts and (given input ``x``) firing statistics:
        mean rate (spikes per neuron per step), fraction of silent neurons (no spike) and of
        saturated ones (rate > 0.5), rate of the excitatory and inhibitory populations."""
        w = self.w_rec
        out: dict[str, Any] = {
            "spectral_radius": spectral_radius(w),
            "recurrent_density": float((w != 0).float().mean()),
            "input_density": float((self.w_in != 0).float().mean()),
            "n_excitatory": int(self.excitatory.sum()),
            "n_inhibitory": int((~self.excitatory).sum()),
        }
        if x is not None:
            s = self.reservoir_spikes(x)
            rates = s.mean((0, 1))
            out.update(rate_statistics(s))
            if (~self.excitatory).any():
                out["rate_excitatory"] = float(rates[self.excitatory].mean())
                out["rate_inhibitory"] = float(rates[~self.excitatory].mean())
        return out


def rate_statistics(spikes: Tensor) -> dict[str, float]:
    """Firing statistics of ``spikes [T, B, N]`` (rates in spikes per neuron per step)."""
    rates = spikes.float().mean((0, 1))
    return {"mean_rate": float(rates.mean()), "silent_fraction": float((rates == 0).float().mean()),
            "saturated_fraction": float((rates > 0.5).float().mean()),
            "rate_std": float(rates.std()) if rates.numel() > 1 else 0.0}


__all__ = ["CONNECTION_TYPES", "LSM", "LSMClassifier", "LSMConfig", "MAASS_CONNECTIVITY", "MAASS_STRENGTHS",
           "MaassColumn", "RESERVOIRS", "build_weights", "connection_probability", "gaussian_weights",
           "grid_positions", "maass_column", "rate_statistics", "scale_to_spectral_radius",
           "spectral_radius"]
