"""The process boundary to Lava: find the interpreter, start the worker, turn failures into one error.

Lava (lava-nc 0.10.0) pins numpy<2 and declares Python <3.11, so it lives in its own environment
(``neuro setup lava`` creates it in a per-user cache, ``make lava`` as ``.venv-lava``). The backend
runs ``worker.py`` as a script (by file path, so neither torch nor ``neuro/__init__`` is imported
there) under the interpreter ``provision.find_lava_python`` finds (``NEURO_LAVA_PYTHON``, the
cache, ``.venv-lava``, the current one). The worker runs in its own session (process
group): on a time-out, Ctrl-C, SIGTERM/SIGHUP or interpreter exit the whole group, Lava's
per-Process OS processes included, is killed (:mod:`neuro.hardware.workers`), and the caller's
temporary folder is removed by its ``finally`` block.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
from pathlib import Path

from ..workers import supervised
from . import provision

WORKER = Path(__file__).with_name("worker.py")
ENV_PYTHON = "NEURO_LAVA_PYTHON"
ENV_TIMEOUT = "NEURO_LAVA_TIMEOUT"
INSTALL_HINT = (f"run `{provision.SETUP_COMMAND}` once (creates a Lava environment in "
                f"{provision.cache_home()}), or set {ENV_PYTHON} to a Python with {provision.LAVA_NC}")


class LavaWorkerError(OSError):
    """The Lava worker failed (Lava missing, a Lava exception, a crash or a time-out).

    The first line of the message says what happened and quotes the worker's own error line;
    the worker's stderr follows on the next lines."""


def lava_python() -> str:
    """The interpreter that runs Lava (search order in ``provision``)."""
    return provision.find_lava_python()[0]


def _where(python: str) -> str:
    """How the Lava interpreter ``python`` was chosen, for error messages."""
    found, where = provision.find_lava_python()
    return where if found == python else "the interpreter"


def default_timeout(lava_steps: int, processes: int) -> float:
    """Seconds allowed for one worker call: start-up and compilation (60 s) plus 5 ms per Lava
    step and process (about 8x the speed measured on 2 cores); ``$NEURO_LAVA_TIMEOUT`` overrides."""
    if os.environ.get(ENV_TIMEOUT):
        try:
            return float(os.environ[ENV_TIMEOUT])
        except ValueError:
            raise ValueError(f"{ENV_TIMEOUT} must be a number of seconds, got "
                             f"{os.environ[ENV_TIMEOUT]!r}") from None
    return 60.0 + 5e-3 * lava_steps * processes


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    tagged = [ln for ln in lines if ln.startswith("lava worker:")]
    line = (tagged[0] if tagged else lines[-1] if lines else "no message").removeprefix("lava worker: ")
    return line if len(line) <= 400 else line[:400] + " ..."


def call_worker(args: list[str], *, timeout: float, python: str | None = None) -> str:
    """Run ``worker.py *args``; return its stdout or raise :class:`LavaWorkerError`."""
    python = python or lava_python()
    if not Path(python).exists() and os.sep in python:
        raise LavaWorkerError(f"the Lava interpreter {python} ({_where(python)}) does not exist; "
                              + INSTALL_HINT)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    # Output goes to files, not pipes: Lava's forked processes inherit the worker's descriptors
    # and would hold a pipe open after the worker itself has exited.
    with tempfile.TemporaryFile("w+") as out_f, tempfile.TemporaryFile("w+") as err_f:
        try:
            proc = subprocess.Popen([python, str(WORKER), *args], stdout=out_f, stderr=err_f,
                                    text=True, env=env, start_new_session=True)
        except OSError as exc:
            raise LavaWorkerError(f"cannot start the Lava interpreter {python}: {exc}; "
                                  + INSTALL_HINT) from None
        try:
            with supervised(proc):  # SIGTERM/SIGHUP raise here, so the group always goes
                proc.wait(timeout=timeout)
        except BaseException as exc:  # time-out, Ctrl-C, SIGTERM: the whole process group goes
            _kill_group(proc)
            proc.wait()
            if not isinstance(exc, subprocess.TimeoutExpired):
                raise
            err_f.seek(0)
            raise LavaWorkerError(f"the Lava worker timed out after {timeout:.0f} s and was killed "
                                  f"(raise {ENV_TIMEOUT} or run(timeout=...) for longer runs)\n"
                                  + err_f.read()[-4000:]) from None
        _kill_group(proc)  # Lava processes left behind by a worker that failed
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read(), err_f.read()
    if proc.returncode == 3:
        line = _error_line(err)  # "Lava is not importable with PY (EXC)": keep EXC only
        m = re.search(r"\((.*)\)$", line)
        raise LavaWorkerError(provision.missing_message(python, _where(python),
                                                        m.group(1) if m else line))
    if proc.returncode != 0:
        raise LavaWorkerError(f"the Lava worker failed (exit {proc.returncode}): "
                              f"{_error_line(err)}\n{err[-4000:]}")
    return out


def probe(python: str | None = None, timeout: float = 60.0) -> dict:
    """``{"lava": version, "numpy": ..., "python": ...}`` of the Lava interpreter (or raise)."""
    out = call_worker(["--probe"], timeout=timeout, python=python)
    return json.loads(out.strip().splitlines()[-1])


__all__ = ["ENV_PYTHON", "ENV_TIMEOUT", "INSTALL_HINT", "LavaWorkerError", "WORKER",
           "call_worker", "default_timeout", "lava_python", "probe"]
