"""Worker processes (Lava, NEST) that never outlive the run that started them.

A backend starts its worker in a new session (its own process group, which the simulator's
forked processes join). :func:`supervised` wraps the wait for it:

* SIGTERM and SIGHUP, while the wait runs in the main thread, raise ``SystemExit(128 + signal)``
  instead of killing Python outright, so every ``finally`` block runs (temporary folders are
  removed) and the worker's whole process group is killed; SIGINT already raises
  ``KeyboardInterrupt``, handled the same way;
* any exception during the wait (time-out, Ctrl-C, the signals above) kills the group;
* at interpreter exit, any group still registered is killed (``atexit``).
"""
from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator

_LIVE: set[int] = set()
_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None))
                 if s is not None)


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by ``pid`` (a worker started with a new session)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def raise_on_termination() -> Iterator[None]:
    """While the block runs, SIGTERM/SIGHUP raise ``SystemExit`` (main thread only; a signal
    the process ignores stays ignored); the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for sig in _SIGNALS:
        old = signal.getsignal(sig)
        if old is signal.SIG_IGN:
            continue
        previous[sig] = old
        signal.signal(sig, _raise_exit)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def supervised(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """Wait for ``proc`` inside this block: any exception (time-out, Ctrl-C, SIGTERM) kills its
    process group before it propagates; the group is also killed at interpreter exit."""
    _LIVE.add(proc.pid)
    try:
        with raise_on_termination():
            try:
                yield proc
            except BaseException:
                kill_group(proc.pid)
                with contextlib.suppress(Exception):
                    proc.wait(timeout=10)
                raise
    finally:
        _LIVE.discard(proc.pid)


@atexit.register
def _kill_live() -> None:
    for pid in list(_LIVE):
        kill_group(pid)


__all__ = ["kill_group", "raise_on_termination", "supervised"]
