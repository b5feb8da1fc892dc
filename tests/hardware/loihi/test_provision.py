"""Where the Loihi backend finds Lava, what it says when it cannot, and `neuro setup lava`'s recipe
(the provisioning itself is not rerun here: pip is replaced by a recorder)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from neuro.cli import main
from neuro.hardware.loihi import provision, runner

REPO = Path(__file__).resolve().parents[3]


def _fake_venv(root: Path) -> Path:
    py = root / "bin" / "python"
    py.parent.mkdir(parents=True)
    py.write_text("#!/bin/sh\n")
    return py


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv(provision.ENV_PYTHON, raising=False)
    monkeypatch.setenv(provision.ENV_HOME, str(tmp_path / "cache"))
    monkeypatch.setattr(provision, "PROJECT_ROOT", tmp_path / "project")
    return tmp_path


def test_search_order_env_then_cache_then_project_then_current(clean_env, monkeypatch):
    tmp = clean_env
    assert provision.find_lava_python() == (sys.executable, "the current interpreter")
    project = _fake_venv(tmp / "project" / ".venv-lava")
    assert provision.find_lava_python() == (str(project), "the project's .venv-lava")
    cached = _fake_venv(tmp / "cache")
    assert provision.find_lava_python() == (str(cached), "the neuro setup lava cache")
    monkeypatch.setenv(provision.ENV_PYTHON, str(tmp / "named-but-missing"))
    assert provision.find_lava_python() == (str(tmp / "named-but-missing"), "$NEURO_LAVA_PYTHON")
    assert runner.lava_python() == str(tmp / "named-but-missing")


def test_cache_location_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv(provision.ENV_HOME, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert provision.cache_home() == tmp_path / "neuro" / "lava"


def test_missing_lava_is_one_line_naming_the_command_once(clean_env):
    # the current interpreter (numpy 2, no lava) is what remains when nothing is provisioned
    with pytest.raises(runner.LavaWorkerError) as err:
        runner.probe(timeout=60)
    msg = str(err.value)
    assert msg.startswith("Lava is not available to neuro: the current interpreter")
    assert "\n" not in msg
    assert msg.count("neuro setup lava") == 1 and msg.count(sys.executable) == 1
    assert msg.count(str(provision.cache_home())) == 1


def test_missing_named_interpreter_says_where_it_came_from(clean_env, monkeypatch):
    monkeypatch.setenv(provision.ENV_PYTHON, str(clean_env / "nope" / "python"))
    with pytest.raises(runner.LavaWorkerError, match=r"\(\$NEURO_LAVA_PYTHON\) does not exist; "
                                                     r"run `neuro setup lava` once"):
        runner.probe(timeout=10)


def test_the_makefile_builds_lava_with_this_recipe():
    """One recipe: the Makefile's .venv-lava target runs provision.py as a script (no pins of
    its own), and the script needs only the standard library (no neuro environment yet)."""
    make = (REPO / "Makefile").read_text()
    target = make.split("$(LAVA_STAMP):", 1)[1].split("\nlava:", 1)[0]
    lines = [ln.strip() for ln in target.splitlines() if ln.startswith("\t")]
    assert lines == ["$(PYTHON) hardware/loihi/provision.py --into $(LAVA_VENV)"]
    assert "LAVA_STAMP := $(LAVA_VENV)/.lava-installed" in make  # the stamp provision writes
    src = Path(provision.__file__).read_text()
    imports = re.findall(r"^\s*(?:from|import) ([\w.]+)", src, re.M)
    assert set(imports) <= {"__future__", "os", "subprocess", "sys", "collections.abc", "pathlib",
                            "argparse"}, imports


def test_script_provisions_and_reports_a_failed_step(tmp_path, monkeypatch, capsys):
    ran = []

    def fake_run(cmd, **kw):
        ran.append(cmd)
        if cmd[1:3] == ["-m", "venv"]:
            _fake_venv(Path(cmd[3]))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(provision.subprocess, "run", fake_run)
    assert provision.main(["--into", str(tmp_path / "v"), "--python", "/usr/bin/python3"]) == 0
    assert ran == provision.commands(tmp_path / "v", "/usr/bin/python3")
    assert (tmp_path / "v" / ".lava-installed").is_file()
    monkeypatch.setattr(provision.subprocess, "run",
                        lambda cmd, **kw: subprocess.CompletedProcess(cmd, 2, "", "boom\n"))
    assert provision.main(["--into", str(tmp_path / "w")]) == 1
    assert "step 1 (create the virtual environment) failed with exit 2: boom" in capsys.readouterr().err


def test_provision_runs_the_recipe_in_order_and_stamps(tmp_path, monkeypatch):
    ran = []

    def fake_run(cmd, **kw):
        ran.append(cmd)
        if cmd[1:3] == ["-m", "venv"]:
            _fake_venv(Path(cmd[3]))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(provision.subprocess, "run", fake_run)
    said = []
    py = provision.provision(tmp_path / "lava", python="/usr/bin/python3", say=said.append)
    assert py == tmp_path / "lava" / "bin" / "python"
    assert ran == provision.commands(tmp_path / "lava", "/usr/bin/python3")
    assert [s.split("]")[0] for s in said[:5]] == [f"[{i}/5" for i in range(1, 6)]
    assert (tmp_path / "lava" / ".lava-installed").is_file()
    ran.clear()
    provision.provision(tmp_path / "lava", say=said.append)  # already there: nothing runs
    assert ran == [] and "already set up" in said[-1]


def test_provision_failure_names_the_step(tmp_path, monkeypatch):
    def fail_pip(cmd, **kw):
        if "pip" in cmd:
            return subprocess.CompletedProcess(cmd, 1, "", "ERROR: no network\n")
        _fake_venv(Path(cmd[3]))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(provision.subprocess, "run", fail_pip)
    with pytest.raises(OSError, match=r"step 2 \(upgrade pip\) failed with exit 1: ERROR: no network"):
        provision.provision(tmp_path / "lava", say=lambda s: None)
    assert not (tmp_path / "lava" / ".lava-installed").exists()


def test_cli_setup_lava_keeps_a_provisioned_environment(tmp_path, capsys):
    _fake_venv(tmp_path / "lava")
    (tmp_path / "lava" / ".lava-installed").write_text("lava-nc==0.10.0\n")
    assert main(["setup", "lava", "--into", str(tmp_path / "lava")]) == 0
    assert "already set up" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["setup", "nest"])
    assert exc.value.code == 2
