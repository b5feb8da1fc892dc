"""The heartbeat: silent for short steps, a line every interval for long ones, then the total."""
import io
import time

from neuro.progress import heartbeat


def test_short_steps_are_silent_and_long_ones_report():
    out = io.StringIO()
    with heartbeat("quick", after=0.5, stream=out):
        pass
    assert out.getvalue() == ""
    with heartbeat("slow step", after=0.05, every=0.1, stream=out):
        time.sleep(0.32)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("neuro: slow step ... ") and len(lines) >= 3
    assert lines[-1].startswith("neuro: slow step: done in 0.")


def test_silenced_by_the_environment(monkeypatch):
    monkeypatch.setenv("NEURO_PROGRESS", "0")
    out = io.StringIO()
    with heartbeat("slow", after=0.01, stream=out):
        time.sleep(0.05)
    assert out.getvalue() == ""
