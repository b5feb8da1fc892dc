"""Start-up: `neuro --help`, `neuro info` and `import neuro` do not import torch (what made them take
seconds), the family catalog the parser reads equals the families, every command has a description."""
import json
import subprocess
import sys

import numpy as np
import pytest

from neuro.catalog import FAMILY_COMMANDS, FAMILY_SUMMARIES
from neuro.cli import build_parser


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; "
                          "print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_neuro_does_not_import_torch():
    mods = _modules_after("import neuro")
    assert "torch" not in mods and "neuro.layers" not in mods
    mods = _modules_after("import neuro; neuro.LIF")  # the public names still work, on first use
    assert "torch" in mods and "neuro.neurons" in mods


@pytest.mark.parametrize("args", [["--help"], ["info", "{ckpt}"], ["info", "{spikes}"],
                                  ["export", "--help"], ["setup", "--help"]])
def test_help_and_info_do_not_import_torch(args, tmp_path):
    from neuro.checkpoint import save_checkpoint
    from neuro.datasets import save_spikes
    from neuro.layers import Linear, Sequential

    ckpt = save_checkpoint(tmp_path / "m.safetensors", Sequential(Linear(3, 2)), name="x",
                           config={"a": 1})
    spikes = save_spikes(tmp_path / "s.npz", np.zeros((4, 3), np.uint8))
    argv = [a.format(ckpt=ckpt, spikes=spikes) for a in args]
    mods = _modules_after(f"from neuro.cli import main\ntry:\n    main({argv!r})\n"
                          "except SystemExit:\n    pass")
    assert "torch" not in mods, argv


def test_catalog_equals_the_families():
    from neuro.models import FAMILIES

    assert FAMILY_SUMMARIES == {name: f.summary for name, f in FAMILIES.items()}
    assert FAMILY_COMMANDS == {c.name: c.help for f in FAMILIES.values() for c in f.commands}


def test_every_command_has_a_description_and_train_lists_the_families(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        assert p.description, name
    train = sub.choices["train"]
    fams = next(a for a in train._actions if a.dest == "model")
    assert list(fams.choices) == list(FAMILY_SUMMARIES)
    light = build_parser(["--help"])  # the fast parser lists the same commands
    light_sub = next(a for a in light._actions if a.dest == "command")
    assert list(light_sub.choices) == list(sub.choices)


def test_info_summarises_a_checkpoint_from_its_header(tmp_path, capsys):
    from neuro.checkpoint import save_checkpoint
    from neuro.checkpoint_info import read_header
    from neuro.layers import Linear, Sequential

    path = save_checkpoint(tmp_path / "m.safetensors", Sequential(Linear(3, 2)), name="x",
                           config={"a": 1}, info={"acc": 0.5})
    meta, tensors = read_header(path)
    assert {k: meta[k] for k in ("model", "config")} == {"model": "x", "config": {"a": 1}}
    assert meta["info"]["acc"] == 0.5  # beside what save_checkpoint records (thread count, ...)
    assert tensors == {"0.weight": {"shape": [2, 3], "dtype": "float32"},
                       "0.bias": {"shape": [2], "dtype": "float32"}}
    (tmp_path / "bad.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{nope")
    with pytest.raises(ValueError, match="bad.safetensors: not a readable safetensors checkpoint"):
        read_header(tmp_path / "bad.safetensors")


def test_per_core_statistics_print_as_a_table():
    from neuro.cli import _format_stats

    lines = _format_stats({"ticks": 3, "per_core": [
        {"chip": [0, 0], "core": 0, "population": "input", "neurons": 16},
        {"chip": [0, 1], "core": 12, "population": "hidden.0", "neurons": 256}]})
    assert lines[0] == "  ticks: 3" and lines[1] == "  per_core:"
    assert lines[2].split() == ["chip", "core", "population", "neurons"]
    assert lines[4].split() == ["0,1", "12", "hidden.0", "256"]
    assert len({len(line) for line in lines[2:]}) == 1  # aligned columns
