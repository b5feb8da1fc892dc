"""Say something when a step takes long: a heartbeat on stderr for work without a natural bar.

``with heartbeat("loihi: Lava run of 200 steps x 16 samples"):`` prints nothing for a step that
ends within ``after`` seconds (2 s), then ``neuro: <label> ... 2 s`` and a line every ``every``
seconds (10 s) until the step ends, then how long it took. Steps with a natural count (training
batches, samples) use a tqdm bar instead; this is for the ones without (a simulator in a worker
process, data generation). ``NEURO_PROGRESS=0`` silences it.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


@contextmanager
def heartbeat(label: str, *, after: float = 2.0, every: float = 10.0,
              stream: TextIO | None = None) -> Iterator[None]:
    """Report ``label`` on ``stream`` (stderr) while the block runs longer than ``after`` s."""
    if os.environ.get("NEURO_PROGRESS") == "0":
        yield
        return
    out = stream if stream is not None else sys.stderr
    start = time.perf_counter()
    done = threading.Event()
    spoke = threading.Event()

    def beat() -> None:
        wait = after
        while not done.wait(wait):
            print(f"neuro: {label} ... {time.perf_counter() - start:.0f} s", file=out, flush=True)
            spoke.set()
            wait = every

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        if spoke.is_set():
            print(f"neuro: {label}: done in {time.perf_counter() - start:.1f} s", file=out, flush=True)


__all__ = ["heartbeat"]
