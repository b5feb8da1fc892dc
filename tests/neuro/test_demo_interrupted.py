"""``neuro demo`` output is all or nothing (issue 19): an interrupted demo leaves no folder that
looks complete, and a folder that is not a demo output is never replaced."""
from types import SimpleNamespace

import pytest

import neuro.models
from neuro.demo import COMPLETE, run_demo


def _families(monkeypatch, demo):
    monkeypatch.setattr(neuro.models, "FAMILIES", {"fake": SimpleNamespace(name="fake", demo=demo)})


def test_interrupted_demo_leaves_nothing(tmp_path, monkeypatch):
    def demo(**kwargs):
        (tmp_path / "started").write_text("")
        raise KeyboardInterrupt

    _families(monkeypatch, demo)
    with pytest.raises(KeyboardInterrupt):
        run_demo(tmp_path / "out")
    assert (tmp_path / "started").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["started"]  # no out, no temporary


def test_finished_demo_is_marked_and_foreign_folders_are_kept(tmp_path, monkeypatch):
    _families(monkeypatch, None)  # no family trains: the demo only writes its marker
    assert run_demo(tmp_path / "out")
    assert (tmp_path / "out" / COMPLETE).is_file()
    assert run_demo(tmp_path / "out")  # a finished demo output may be replaced
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("user data")
    with pytest.raises(ValueError, match="not a neuro demo output"):
        run_demo(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "user data"
