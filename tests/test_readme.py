"""README.md cannot rot: its examples run as written.

* every ```python block runs, in order, in one namespace (as a reader pasting them one after the
  other would), in a temporary directory; the networks it builds must be active (every spiking
  node fires on the example input), or "IDENTICAL" proves nothing;
* every ``neuro ...`` line of a ```sh block runs, in order, and must exit 0; the demo runs one
  family for one epoch on two samples (``NEURO_DEMO_*``), and ``neuro setup lava`` finds a
  provisioned environment (a cache pointing at the test set-up's Lava), so nothing is installed;
* every ``neuro ...`` synopsis line of a ```text block names a command that exists, and every
  ``--option`` it shows is accepted by that command (checked against its parser).

Takes about a minute (the demo's training and target runs, Lava's simulator on 4 samples).
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from pathlib import Path

import pytest
import torch

from neuro.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def blocks(lang: str) -> list[str]:
    """The fenced blocks of README.md opened with ```lang, in order."""
    return re.findall(rf"^```{lang}\n(.*?)^```", README.read_text(), re.S | re.M)


def command_lines(block: str) -> list[str]:
    """The ``neuro ...`` lines of a block, with their trailing comments removed."""
    out = []
    for line in block.splitlines():
        line = line.strip()
        if "-m neuro " in line:  # torchrun ... -m neuro train ...
            line = "neuro " + line.split("-m neuro ", 1)[1]
        if line.startswith("neuro "):
            out.append(re.split(r"\s{2,}#|\s#\s", line)[0].strip())
    return out


def test_readme_fences_are_labelled():
    """Each block says what it is (python: runs; sh: runs; text: a synopsis), so none escapes."""
    fences = re.findall(r"^```(\S*)$", README.read_text(), re.M)
    opening = fences[0::2]
    assert all(lang in ("python", "sh", "text") for lang in opening), opening
    assert blocks("sh") and blocks("python") and blocks("text")


def test_python_blocks_run_in_order_on_active_networks(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "__readme__"}
    for i, code in enumerate(blocks("python")):
        exec(compile(code, f"README.md python block {i + 1}", "exec"), ns)  # noqa: S102
    # the graph example's network is active: every spiking node fired on the example input
    g, values = ns["g"], ns["values"]
    spiking = [n for n, node in g.nodes.items() if node.spiking and node.role != "input"]
    assert spiking and all(float(values[n].sum()) > 0 for n in spiking), \
        {n: float(values[n].sum()) for n in spiking}
    # and the hardware example's IDENTICAL is about spikes that exist, on every layer
    comparison = ns["comparison"]
    assert comparison.ok
    rows = comparison.as_dict()
    assert "IDENTICAL" in capsys.readouterr().out
    assert rows  # the table is not empty
    assert isinstance(ns["out"], dict) and isinstance(ns["out"]["output"], torch.Tensor)


def _provisioned_lava() -> Path:
    """The test set-up's Lava environment, standing in for a `neuro setup lava` cache (a venv
    cannot be linked to piecewise: its Python finds its packages through pyvenv.cfg beside it)."""
    lava = Path(os.environ.get("NEURO_LAVA_PYTHON") or REPO / ".venv-lava" / "bin" / "python")
    home = lava.parent.parent.resolve()
    assert (home / ".lava-installed").is_file(), f"{home}: not a provisioned Lava environment"
    return home


def test_sh_commands_run_in_order(tmp_path, monkeypatch, capsys):
    lines = [c for b in blocks("sh") for c in command_lines(b)]
    assert any(c.startswith("neuro demo") for c in lines)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("NEURO_DEMO_EPOCHS", "1")
    monkeypatch.setenv("NEURO_DEMO_SAMPLES", "2")
    monkeypatch.setenv("NEURO_DEMO_FAMILIES", "delay-snn")
    # the Loihi backend must find Lava the way a pip user's would: through the setup cache
    monkeypatch.setenv("NEURO_LAVA_HOME", str(_provisioned_lava()))
    monkeypatch.delenv("NEURO_LAVA_PYTHON", raising=False)
    for line in lines:
        argv = shlex.split(line)[1:]
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse usage errors
            code = exc.code
        out, err = capsys.readouterr()
        sys.stdout.write(out)
        assert code == 0, f"`{line}` exited {code}: {err.strip()[-2000:]}"
        if argv[0] == "setup":
            assert "already set up" in out
        if argv[0] == "demo":
            assert "IDENTICAL" in out and "NOT RUN" not in out, out


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert name in sub.choices, f"README names `{name}`, which is not a command: {list(sub.choices)}"
    return sub.choices[name]


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings}


@pytest.mark.parametrize("line", [c for b in blocks("text") for c in command_lines(b)])
def test_text_synopsis_names_real_commands_and_options(line):
    words = shlex.split(line.replace("|", " "))[1:]
    words = [w.strip("[]") for w in words]
    parser = build_parser()
    if words[0] in ("-h", "--help"):
        return
    cmd = _subparser(parser, words[0])
    if words[0] == "train" and len(words) > 1 and not words[1].startswith("-"):
        if words[1] != "MODEL":
            cmd = _subparser(cmd, words[1])
    unknown = [w.split("=")[0] for w in words if w.startswith("--")
               and w.split("=")[0] not in _options(cmd)]
    assert not unknown, f"`{line}`: {words[0]} does not take {unknown}"
