"""NESTML neuron models for the NEST target, generated and built as a NEST extension module on demand.

``neuro_lif_subtract_neuron`` (``SUBTRACT_MODEL``) is neuro's discrete LIF with subtractive reset,
which NEST's built-in ``iaf_psc_delta`` cannot express (it resets to ``V_reset``). Per NEST step
``h = 1 ms`` (``mapping`` gives the units: ``V_m``/``V_th`` in neuro's membrane unit, weights the
same unit per spike)::

    V_m <- exp(-h / tau_m) V_m + sum_j w_ij s_j        (input that arrives in this step)
    if V_m >= V_th:  V_m <- V_m - V_th, emit a spike, refr_counter <- refr_steps
    while refr_counter > 0: V_m is held, the input of the step is dropped, refr_counter -= 1

which is ``neuro.neurons.lif`` with ``reset="subtract"``, ``reset_timing="immediate"`` and
``refractory = refr_steps`` (``beta = exp(-1/tau_m)``, the same propagator as ``iaf_psc_delta``,
so ``mapping.tau_for_beta`` applies). NESTML prints the summed input as ``(0.001 * sum) / 0.001``
(its 1/s -> 1/ms unit conversion): the float64 sum changes by at most one ulp (1.1e-16 relative),
far below the float32 rounding of the reference executor.

Build (``build_module``), in the interpreter that runs NEST (``nest_python``), which needs
``nestml`` (``NESTML_REQUIREMENT``), ``cmake``, ``make``, a C++20 compiler and the Boost and libltdl
headers that NEST's headers include (Debian: ``libboost-dev libltdl-dev``):

1. NESTML generates the C++ model and module (``generate_nest_target``, ``nest_version`` given);
2. the module is compiled against the headers the ``nest-simulator`` wheel installs
   (``site-packages/nest/include/nest``). The wheel's own ``nest-config`` prints the paths of the
   machine that built it (``/tmp/tmp.../wheel/platlib``) and that machine's compiler, so a small
   ``nest-config`` written here prints the installed paths, ``$CXX`` (default ``g++``) and the
   wheel's C++ string ABI (``-D_GLIBCXX_USE_CXX11_ABI=0`` for the manylinux wheel, read from the
   kernel's exported symbols). ``--libs`` is empty: the module's NEST symbols resolve at load time
   against ``nestkernel_api.so``, which ``import nest`` loads with ``RTLD_GLOBAL``;
3. the module is loaded once in a fresh NEST (``Install`` by absolute path, one node created)
   before it is cached.

Cache: ``$NEURO_NEST_CACHE`` or ``~/.cache/neuro/nest``, one folder per key (the first 16 hex digits
of sha256 over the model text, the NEST and NESTML versions, the flags and this module's build
recipe); the module is ``<cache>/<key>/<module>.so``. A finished folder is renamed into place, so
concurrent builds never see half a module. ``python -m neuro.hardware.nest.nestml_models`` builds it
(the set-up runs this once).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

NESTML_REQUIREMENT = "nestml==9.0.0"
SYSTEM_PACKAGES = "libboost-dev libltdl-dev"  # Debian/Ubuntu: the headers NEST's headers include
ENV_CACHE = "NEURO_NEST_CACHE"
ENV_TIMEOUT = "NEURO_NESTML_TIMEOUT"
#: version of the recipe below (bump when the flags, the nest-config or the model text change)
RECIPE = 1

SUBTRACT_MODEL = "neuro_lif_subtract_neuron"
#: NESTML source of every model, by model name
MODELS: dict[str, str] = {SUBTRACT_MODEL: '''\
# neuro's discrete LIF with subtractive reset (written by neuro.hardware.nest.nestml_models).
# One NEST step (resolution 1 ms) is one reference step:
#   V_m <- exp(-h/tau_m) V_m + (weights of the spikes arriving in this step)
#   V_m >= V_th: spike, V_m <- V_m - V_th, then refr_steps steps holding V_m and dropping input.
model neuro_lif_subtract_neuron:
    state:
        V_m real = 0.
        refr_counter integer = 0

    equations:
        kernel K_delta = delta(t)
        V_m' = -V_m / tau_m + convolve(K_delta, spikes)

    parameters:
        tau_m ms = 10 ms
        V_th real = 1.
        refr_steps integer = 0

    input:
        spikes <- spike

    output:
        spike

    update:
        if refr_counter > 0:
            refr_counter -= 1
        else:
            integrate_odes()
            if V_m >= V_th:
                V_m -= V_th
                refr_counter = refr_steps
                emit_spike()
'''}


class NestmlBuildError(RuntimeError):
    """The NESTML module cannot be built or loaded here (the message names what is missing)."""


@dataclass(frozen=True)
class Module:
    """A built NEST extension module: ``nest.Install(str(path))`` loads it (``path`` has no
    ``.so`` suffix), after which ``models`` can be created."""

    name: str
    path: Path
    models: tuple[str, ...]


def cache_root() -> Path:
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "neuro" / "nest")


_PROBE = r'''
import importlib.metadata as md, importlib.util as iu, json, os
def version(d):
    try:
        return md.version(d)
    except md.PackageNotFoundError:
        return None
spec = iu.find_spec("nest")
nest_dir = list(spec.submodule_search_locations)[0] if spec and spec.submodule_search_locations else None
print(json.dumps({"nest": version("nest-simulator"), "nestml": version("nestml"), "nest_dir": nest_dir}))
'''


@functools.lru_cache(maxsize=8)
def probe(python: str) -> dict:
    """``{"nest": version, "nestml": version, "nest_dir": path}`` of ``python`` (None if absent);
    imports neither NEST nor NESTML."""
    try:
        out = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=60,
                             env=_clean_env(), check=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        raise NestmlBuildError(f"cannot query the NEST interpreter {python}: {exc}") from None


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _kernel(nest_dir: str) -> Path:
    return Path(nest_dir) / "nestkernel_api.so"


@functools.lru_cache(maxsize=8)
def string_abi(kernel: Path) -> int:
    """``_GLIBCXX_USE_CXX11_ABI`` of the NEST kernel library: 0 when its exported
    ``nest::install_module(std::string const&)`` uses the old ``std::string`` (``Ss``), else 1."""
    data = kernel.read_bytes()
    if b"_ZN4nest14install_moduleERKSs" in data:
        return 0
    if b"_ZN4nest14install_moduleERKNSt7__cxx11" in data:
        return 1
    raise NestmlBuildError(f"{kernel}: cannot tell its C++ string ABI (nest::install_module not "
                           "found); is this a nest-simulator 3.10 wheel?")


def _cflags(abi: int) -> str:
    return f"-O2 -std=c++20 -fopenmp -DNDEBUG -D_GLIBCXX_USE_CXX11_ABI={abi}"


def _compiler() -> str:
    return os.environ.get("CXX") or "g++"


def module_name(key: str) -> str:
    return f"neuro{key}module"  # NESTML requires the suffix "module"


def missing(python: str | None = None) -> list[str]:
    """What stops ``build_module`` here (``[]`` when the module is built or can be): the NESTML
    package in the NEST interpreter, the tools, the headers."""
    python = python or _nest_python()
    try:
        info = probe(python)
    except NestmlBuildError as exc:
        return [str(exc)]
    out = []
    if not info["nest"] or not info["nest_dir"]:
        out.append(f"nest-simulator is not installed for {python}")
        return out
    if info["nestml"] and _cached(info) is not None:
        return []
    if not info["nestml"]:
        out.append(f"NESTML is not installed for {python} (pip install {NESTML_REQUIREMENT})")
    for tool in (_compiler(), "cmake", "make"):
        if shutil.which(tool) is None:
            out.append(f"no {tool!r} on PATH (a C++20 compiler, cmake and make build the module)")
    if shutil.which(_compiler()) is not None:
        out += _header_problems()
    return out


@functools.lru_cache(maxsize=1)
def _header_problems() -> list[str]:
    out = []
    for header in ("boost/type_index.hpp", "ltdl.h"):
        src = f"#include <{header}>\nint main() {{ return 0; }}\n"
        proc = subprocess.run([_compiler(), "-std=c++20", "-fsyntax-only", "-x", "c++", "-"], input=src,
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            out.append(f"the C++ header <{header}> that NEST's headers include is missing "
                       f"(Debian/Ubuntu: apt-get install {SYSTEM_PACKAGES})")
    return out


def _nest_python() -> str:
    return os.environ.get("NEURO_NEST_PYTHON") or sys.executable


def _key(info: dict) -> str:
    abi = string_abi(_kernel(info["nest_dir"]))
    text = json.dumps({"models": MODELS, "nest": info["nest"], "nestml": info["nestml"],
                       "cflags": _cflags(abi), "recipe": RECIPE}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cached(info: dict) -> Module | None:
    key = _key(info)
    name = module_name(key)
    folder = cache_root() / key
    if (folder / f"{name}.so").is_file() and (folder / "module.json").is_file():
        return Module(name, folder / name, tuple(MODELS))
    return None


_GENERATE = r'''
import sys
from pynestml.frontend.pynestml_frontend import generate_nest_target
models, target, install, name, prefix, version = sys.argv[1:7]
generate_nest_target(models, target_path=target, install_path=install, module_name=name,
                     logging_level="WARNING",
                     codegen_opts={"nest_path": prefix, "nest_version": "v" + version})
'''

_SMOKE = r'''
import sys
import nest
nest.set_verbosity("M_ERROR")
nest.Install(sys.argv[1])
for m in sys.argv[2:]:
    nest.Create(m, 1)
print("loaded")
'''

_NEST_CONFIG = '''#!/bin/sh
# written by neuro.hardware.nest.nestml_models: the nest-simulator wheel's nest-config reports the
# paths and compiler of the machine that built the wheel; these are the installed ones.
case "$1" in
  --prefix|--exec-prefix) echo "{prefix}" ;;
  --compiler) echo "{compiler}" ;;
  --compiler-name) echo GNU ;;
  --cflags) echo "{cflags}" ;;
  --includes) echo "-I{include}" ;;
  --libs) echo "" ;;
  --static-libraries) echo OFF ;;
  --libdir) echo lib ;;
  --version) echo "{version}" ;;
  *) echo "nest-config (neuro): unknown option $1" >&2; exit 1 ;;
esac
'''


def build_module(python: str | None = None, *, timeout: float | None = None) -> Module:
    """Generate, compile and load-test the module of ``MODELS`` (cached; module docstring).
    Raises NestmlBuildError naming what is missing, or with the build log's tail."""
    python = python or _nest_python()
    problems = missing(python)
    if problems:
        raise NestmlBuildError("cannot build the NESTML module (" + ", ".join(MODELS) + "): "
                               + "; ".join(problems))
    info = probe(python)
    hit = _cached(info)
    if hit is not None:
        return hit
    key = _key(info)
    name = module_name(key)
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    timeout = float(os.environ.get(ENV_TIMEOUT, 900)) if timeout is None else timeout
    work = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=root))
    try:
        (work / "models").mkdir()
        for model, text in MODELS.items():
            (work / "models" / f"{model}.nestml").write_text(text)
        prefix = work / "prefix"
        (prefix / "bin").mkdir(parents=True)
        config = prefix / "bin" / "nest-config"
        abi = string_abi(_kernel(info["nest_dir"]))
        config.write_text(_NEST_CONFIG.format(
            prefix=prefix, compiler=_compiler(), cflags=_cflags(abi), version=info["nest"],
            include=Path(info["nest_dir"]) / "include" / "nest"))
        config.chmod(0o755)
        out = work / "module"
        log = work / "build.log"
        with open(log, "w") as fh:
            try:
                proc = subprocess.run(
                    [python, "-c", _GENERATE, str(work / "models"), str(work / "target"), str(out),
                     name, str(prefix), info["nest"]],
                    stdout=fh, stderr=subprocess.STDOUT, cwd=work, env=_clean_env(), timeout=timeout)
            except subprocess.TimeoutExpired:
                raise NestmlBuildError(f"the NESTML build timed out after {timeout:.0f} s (raise "
                                       f"{ENV_TIMEOUT}); log: {log}") from None
        so = out / f"{name}.so"
        if proc.returncode != 0 or not so.is_file():
            tail = log.read_text(errors="replace")[-3000:]
            keep = root / f"failed-{key}.log"
            shutil.copyfile(log, keep)
            raise NestmlBuildError(f"the NESTML build of {name} failed (exit {proc.returncode}; "
                                   f"log {keep}):\n{tail}")
        smoke = subprocess.run([python, "-c", _SMOKE, str(out / name), *MODELS], capture_output=True,
                               text=True, env=_clean_env(), timeout=120)
        if smoke.returncode != 0 or "loaded" not in smoke.stdout:
            raise NestmlBuildError(f"the built module {so} does not load into NEST "
                                   f"{info['nest']}: {(smoke.stderr or smoke.stdout)[-2000:]}")
        final = root / key
        staged = work / key
        staged.mkdir()
        shutil.copyfile(so, staged / so.name)
        for model in MODELS:
            shutil.copyfile(work / "models" / f"{model}.nestml", staged / f"{model}.nestml")
        (staged / "module.json").write_text(json.dumps(
            {"module": name, "models": list(MODELS), "nest": info["nest"], "nestml": info["nestml"],
             "cflags": _cflags(abi), "compiler": _compiler(), "recipe": RECIPE}, indent=1))
        try:
            os.rename(staged, final)
        except OSError:
            if not (final / f"{name}.so").is_file():  # another process built it meanwhile: keep theirs
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Module(name, final / name, tuple(MODELS))


def main() -> int:
    try:
        m = build_module()
    except NestmlBuildError as exc:
        print(f"neuro: NESTML module unavailable: {exc}", file=sys.stderr)
        return 1
    print(f"neuro: NESTML module {m.name} ready ({', '.join(m.models)}): {m.path}.so")
    return 0


__all__ = ["MODELS", "Module", "NESTML_REQUIREMENT", "NestmlBuildError", "SUBTRACT_MODEL",
           "build_module", "cache_root", "missing", "module_name", "probe"]

if __name__ == "__main__":
    sys.exit(main())
