"""SIGTERM to ``neuro run`` of a Loihi artifact while Lava runs (issue 19): the command exits
with status 143 and no traceback, no worker process (Lava's forked processes included)
outlives it, and neither its ``neuro-lava-*`` temporary folder nor a partial ``--out`` is left."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from neuro.cli import main
from neuro.models import SpikingMLP, SpikingMLPConfig


def _stat(pid: int) -> tuple[int, int, str] | None:
    """``(parent pid, session id, state)`` of a live process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
    return int(fields[1]), int(fields[3]), fields[0]


def _session(sid: int) -> list[int]:
    """Live (not zombie) processes of session ``sid``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and st[1] == sid and st[2] != "Z":
                out.append(int(entry))
    return out


def _worker_of(parent: int) -> int | None:
    """The Lava worker the ``neuro`` process started (a child leading its own session)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and st[0] == parent and st[1] == int(entry):
                return int(entry)
    return None


def test_sigterm_during_a_lava_run_leaves_nothing_behind(tmp_path, lava_python):
    from neuro.checkpoint import save_checkpoint

    torch.manual_seed(0)
    m = SpikingMLP(SpikingMLPConfig(layers=[12, 10, 3], reset="zero"))
    ckpt = save_checkpoint(tmp_path / "m.safetensors", m, name=m.name, config=m.config_dict())
    art = tmp_path / "art"
    assert main(["export", str(ckpt), "--target", "loihi", "--out", str(art)]) == 0
    # long enough that Lava is still stepping when the signal comes (minutes on this input)
    x = (np.random.default_rng(0).random((20_000, 4, 12)) < 0.3).astype(np.uint8)
    np.savez(tmp_path / "in.npz", spikes=x)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "out.npz"
    env = {**os.environ, "TMPDIR": str(tmp), "NEURO_LAVA_PYTHON": lava_python,
           "NEURO_PROGRESS": "0", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "neuro", "run", str(art), "--input",
                             str(tmp_path / "in.npz"), "--out", str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        worker = None
        while True:  # until the worker has forked Lava's processes
            assert proc.poll() is None, f"neuro run ended early: {proc.communicate()}"
            assert time.time() < deadline, "the Lava worker did not start its processes"
            worker = worker or _worker_of(proc.pid)
            if worker and len(_session(worker)) >= 3:
                break
            time.sleep(0.1)
        assert [p.name for p in tmp.iterdir() if p.name.startswith("neuro-lava-")]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err, err
    gone = time.time() + 10
    while _session(worker) and time.time() < gone:  # SIGKILLed: only the reaping is left
        time.sleep(0.1)
    assert _session(worker) == [], "Lava worker processes outlived the run"
    assert [p.name for p in tmp.iterdir() if p.name.startswith("neuro-lava-")] == []
    assert not out.exists() and not list(tmp_path.glob("out*"))
