"""Where the Lava environment lives, and how ``neuro setup lava`` creates it.

Lava (lava-nc 0.10.0) pins numpy<2 and declares Python <3.11, so it runs in an environment of its
own (the worker boundary in ``runner.py``). The Loihi backend looks for that environment's Python
in this order and takes the first that exists:

1. ``$NEURO_LAVA_PYTHON`` (whatever it names; a missing file is an error that says so);
2. the per-user cache that ``neuro setup lava`` fills: ``$NEURO_LAVA_HOME``, else
   ``$XDG_CACHE_HOME/neuro/lava``, else ``~/.cache/neuro/lava`` (``bin/python`` inside it);
3. ``.venv-lava`` beside the project (what ``make lava`` creates in a source checkout);
4. the current interpreter (Lava installed next to neuro: works where Lava's pins allow it).

The recipe (:func:`commands`: ``LAVA_PACKAGES`` then lava-nc without its dependency or Python
checks; the worker carries the work-around Lava needs on Python 3.11) lives here only. The
Makefile's ``.venv-lava`` target runs this file as a script (``python3
hardware/loihi/provision.py --into .venv-lava``): it imports nothing but the standard library, so
it needs neither neuro's environment nor an installed neuro.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ENV_PYTHON = "NEURO_LAVA_PYTHON"
ENV_HOME = "NEURO_LAVA_HOME"
#: the command that creates the cached Lava environment (named by every "not found" message)
SETUP_COMMAND = "neuro setup lava"
#: Lava's own dependencies, installed normally (the pins of the Makefile's .venv-lava target)
LAVA_PACKAGES = ("numpy==1.26.4", "networkx==2.8.7", "asteval==0.9.33", "scipy==1.16.3",
                 "scikit-learn==1.9.1")
#: installed with --no-deps --ignore-requires-python (it declares Python <3.11)
LAVA_NC = "lava-nc==0.10.0"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def cache_home() -> Path:
    """The per-user Lava environment ``neuro setup lava`` creates (module docstring, item 2)."""
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "neuro" / "lava"


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def candidates() -> list[tuple[str, Path]]:
    """``(where, python)`` in search order, before the current-interpreter fallback."""
    found: list[tuple[str, Path]] = []
    if os.environ.get(ENV_PYTHON):
        found.append((f"${ENV_PYTHON}", Path(os.environ[ENV_PYTHON])))
    found.append((f"the {SETUP_COMMAND} cache", _venv_python(cache_home())))
    found.append(("the project's .venv-lava", _venv_python(PROJECT_ROOT / ".venv-lava")))
    return found


def find_lava_python() -> tuple[str, str]:
    """``(python, where)``: the interpreter that runs Lava and where it was found.

    ``$NEURO_LAVA_PYTHON`` is taken as given (even when missing, so that the error names it); the
    cache and ``.venv-lava`` count only when their ``bin/python`` exists; else the current
    interpreter."""
    for where, python in candidates():
        if where.startswith("$") or python.exists():
            return str(python), where
    return sys.executable, "the current interpreter"


def missing_message(python: str, where: str, detail: str = "") -> str:
    """One line: Lava cannot run with ``python`` (found as ``where``) and what to do about it."""
    why = f" ({detail})" if detail else ""
    return (f"Lava is not available to neuro: {where} {python} cannot import it{why}; run "
            f"`{SETUP_COMMAND}` once (creates {cache_home()}), or set {ENV_PYTHON} to a Python "
            f"with {LAVA_NC}")


def commands(venv: Path, python: str = sys.executable) -> list[list[str]]:
    """The provisioning recipe as argument lists (the Makefile's ``.venv-lava`` target)."""
    py = str(_venv_python(venv))
    pip = [py, "-m", "pip", "install", "--quiet"]
    return [
        [python, "-m", "venv", str(venv)],
        [*pip, "--upgrade", "pip"],
        [*pip, *LAVA_PACKAGES],
        [*pip, "--no-deps", "--ignore-requires-python", LAVA_NC],
        [py, str(Path(__file__).with_name("worker.py")), "--probe"],
    ]


def provision(venv: Path | None = None, *, python: str = sys.executable, force: bool = False,
              say: Callable[[str], None] = print) -> Path:
    """Create the Lava environment at ``venv`` (default: :func:`cache_home`) and return its
    Python. An existing one that passes the probe is kept unless ``force``. Each step is
    announced through ``say`` before it starts (pip takes minutes on a fresh machine)."""
    venv = Path(venv) if venv is not None else cache_home()
    py = _venv_python(venv)
    stamp = venv / ".lava-installed"
    if stamp.is_file() and py.exists() and not force:
        say(f"Lava environment already set up: {venv} (--force rebuilds it)")
        return py
    steps = commands(venv, python)
    names = ["create the virtual environment", "upgrade pip",
             "install Lava's dependencies: " + " ".join(LAVA_PACKAGES),
             f"install {LAVA_NC} (--no-deps --ignore-requires-python)", "probe: import Lava"]
    for i, (name, cmd) in enumerate(zip(names, steps), 1):
        say(f"[{i}/{len(steps)}] {name}")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()
            raise OSError(f"{SETUP_COMMAND}: step {i} ({name}) failed with exit "
                          f"{proc.returncode}: {tail[-1] if tail else 'no output'}")
        if i == 1:
            (venv / ".gitignore").write_text("*\n")
    stamp.write_text(LAVA_NC + "\n")
    say(f"Lava ready: {py} (the Loihi backend finds it; no environment variable needed)")
    return py


def main(argv: list[str] | None = None) -> int:
    """``python hardware/loihi/provision.py [--into DIR] [--python PY] [--force]`` (the Makefile's
    ``lava`` target; ``neuro setup lava`` takes the same options). Exit 1 naming the failed step."""
    import argparse

    p = argparse.ArgumentParser(prog="provision.py", description="create the Lava environment")
    p.add_argument("--into", metavar="DIR", help=f"where (default: {cache_home()})")
    p.add_argument("--python", default=sys.executable, help="the Python that creates the venv")
    p.add_argument("--force", action="store_true", help="rebuild an existing environment")
    args = p.parse_args(argv)
    try:
        provision(Path(args.into) if args.into else None, python=args.python, force=args.force)
    except OSError as exc:
        print(f"provision.py: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["ENV_HOME", "ENV_PYTHON", "LAVA_NC", "LAVA_PACKAGES", "SETUP_COMMAND", "cache_home",
           "candidates", "commands", "find_lava_python", "main", "missing_message", "provision"]
