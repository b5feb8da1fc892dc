"""Worker processes never outlive an interrupted run (issue 19): SIGTERM to a process waiting on
a worker kills the worker's whole process group and removes the run's temporary folder."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

FAKE_WORKER = """#!/bin/sh
# stands in for the Lava interpreter: two long-lived children, like Lava's per-Process workers
sleep 300 &
echo $! > "$PIDS"
sleep 300 &
echo $! >> "$PIDS"
wait
"""

PARENT = """
import sys, tempfile, shutil
from pathlib import Path
from neuro.hardware.loihi.runner import call_worker
tmp = Path(tempfile.mkdtemp(prefix="neuro-lava-", dir=sys.argv[2]))
try:
    call_worker([], timeout=300, python=sys.argv[1])
finally:
    shutil.rmtree(tmp, ignore_errors=True)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie waiting for its reaper is gone too
        return f.read().split()[2] != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM])  # SIGINT (KeyboardInterrupt) takes the same path
def test_signal_kills_the_worker_group_and_removes_temporary_files(tmp_path, sig):
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_WORKER)
    fake.chmod(0o755)
    pids = tmp_path / "pids"
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PIDS": str(pids), "PYTHONPATH": os.pathsep.join(sys.path)}
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(PARENT), str(fake), str(work)],
                              env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (pids.exists() and len(pids.read_text().split()) == 2):
        assert time.time() < deadline and parent.poll() is None, "the fake worker did not start"
        time.sleep(0.05)
    assert list(work.iterdir())  # the run's temporary folder exists
    children = [int(p) for p in pids.read_text().split()]
    parent.send_signal(sig)
    _, err = parent.communicate(timeout=30)
    assert parent.returncode != 0
    time.sleep(0.2)
    assert not any(_alive(p) for p in children), "worker processes outlived the run"
    assert list(work.iterdir()) == [], "the temporary folder was left behind"
    assert "Traceback" not in err or sig == signal.SIGINT


def test_sigterm_raises_system_exit_inside_the_block_only():
    """What `neuro` wraps every command in: SIGTERM becomes SystemExit(143), so ``finally``
    blocks (temporary files, worker groups) run; the previous handler comes back afterwards."""
    from neuro.hardware.workers import raise_on_termination

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exc, raise_on_termination():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # interrupted by the signal
    assert exc.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before
