"""The ``neuro`` command: help, info, demo, and one-line errors with exit status 2."""
import json
import subprocess
import sys

import numpy as np
import pytest

from neuro.cli import build_parser, main


def _run(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "neuro", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def test_help_lists_commands():
    r = _run("--help")
    assert r.returncode == 0
    assert "demo" in r.stdout and "info" in r.stdout and "train" in r.stdout


def test_demo_trains_and_writes_checkpoint(tmp_path):
    r = _run("demo", "--out", str(tmp_path / "out"), "--epochs", "2", timeout=1200)
    assert r.returncode == 0, r.stderr
    assert "test accuracy:" in r.stdout
    acc = float(r.stdout.split("test accuracy:")[1].split()[0])
    assert acc > 0.4  # 4 classes, chance 0.25
    ckpt = tmp_path / "out" / "delay-snn" / "model.safetensors"
    assert ckpt.is_file()
    for target in ("loihi", "spinnaker"):  # exported, run and identical to the reference executor
        assert f"{target} " in r.stdout
        assert (tmp_path / "out" / "delay-snn" / target / "manifest.json").is_file()
    assert "DIFFERS" not in r.stdout
    not_run = [line for line in r.stdout.splitlines() if "NOT RUN" in line]
    assert all("cannot run this model" in line for line in not_run), not_run  # refusals only
    for family in ("delay-snn", "lsm"):  # every family in the table: checkpoint, targets, energy
        assert (tmp_path / "out" / family / "energy" / "report.html").is_file()
        for target in ("loihi", "spinnaker", "fpga"):
            assert (tmp_path / "out" / family / target / "manifest.json").is_file()
    from neuro.hardware import TARGETS

    assert r.stdout.count("IDENTICAL") >= 2 * len(TARGETS)  # two families on every target
    # the closing table: one row per family, a verdict per target, energy per sample or token
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert summary in r.stdout
    done = json.loads((tmp_path / "out" / "demo.json").read_text())
    assert [f["family"] for f in done["families"]] == ["delay-snn", "lsm", "spikegpt", "egru"]
    for f in done["families"]:
        assert set(f["targets"]) == set(TARGETS)
        assert f"| {f['family']} | {f['task']} | " in summary
        assert f["unit"] == ("token" if f["family"] in ("spikegpt", "egru") else "sample")
        assert f["score"]["value"] > 0 and 0 < f["activity_sparsity"] < 1
        assert all(v > 0 for v in f["dynamic_energy_J"].values())
        report = json.loads((tmp_path / "out" / f["family"] / "energy" / "report.json").read_text())
        assert report["model"]["checkpoint"] == str(tmp_path / "out" / f["family"] /
                                                    "model.safetensors")  # final, not temporary
    scores = {f["family"]: f["score"] for f in done["families"]}
    assert scores["spikegpt"]["metric"] == "bpc" and scores["spikegpt"]["value"] < 8  # < uniform
    assert scores["egru"]["metric"] == "perplexity" and scores["egru"]["value"] < 2000
    assert all(v == "IDENTICAL" or v == "AGREES" for f in done["families"][:2]
               for v in f["targets"].values())
    info = _run("info", str(ckpt))
    assert info.returncode == 0 and "delay-snn" in info.stdout and "0.P" in info.stdout


@pytest.mark.parametrize("content,expected", [
    (b"garbage", "not a readable safetensors"),
    (None, "no such file"),
])
def test_info_bad_checkpoint_is_one_line_exit_2(tmp_path, content, expected):
    path = tmp_path / "x.safetensors"
    if content is not None:
        path.write_bytes(content)
    r = _run("info", str(path))
    assert r.returncode == 2
    assert expected in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_info_spike_files(tmp_path, capsys):
    good = tmp_path / "s.npz"
    np.savez(good, spikes=(np.random.rand(20, 5) < 0.2).astype(np.uint8))
    assert main(["info", str(good)]) == 0
    assert "shape: [20, 5]" in capsys.readouterr().out
    nan = tmp_path / "nan.npz"
    arr = np.zeros((4, 3), np.float32)
    arr[1, 1] = np.nan
    np.savez(nan, spikes=arr)
    assert main(["info", str(nan)]) == 2
    assert "NaN" in capsys.readouterr().err
    wrong = tmp_path / "w.npz"
    np.savez(wrong, spikes=np.zeros(4))
    assert main(["info", str(wrong)]) == 2
    assert "[T, N] or [T, B, N]" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["demo", "--epochs", "0"], ["frobnicate"], ["info"]])
def test_bad_option_exits_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error:" in err[0]


def test_run_checkpoint_on_reference_executor(tmp_path, capsys):
    import torch

    from neuro.checkpoint import save_checkpoint
    from neuro.models import SpikingMLP, SpikingMLPConfig

    m = SpikingMLP(SpikingMLPConfig(layers=[6, 5, 3]))
    with torch.no_grad():
        m[0].weight.mul_(5)
    ckpt = save_checkpoint(tmp_path / "m.safetensors", m, name=m.name, config=m.config_dict())
    x = (np.random.default_rng(0).random((30, 2, 6)) < 0.3).astype(np.uint8)
    np.savez(tmp_path / "in.npz", spikes=x)
    assert main(["run", str(ckpt), "--input", str(tmp_path / "in.npz"), "--out",
                 str(tmp_path / "out.npz")]) == 0
    with np.load(tmp_path / "out.npz") as f:
        assert f["spikes"].shape == (30, 2, 5) and f["output"].shape == (30, 2, 3)
        ref, _ = m(torch.from_numpy(x).float())
        assert np.array_equal(f["output"], ref.detach().numpy())
    np.savez(tmp_path / "wrong.npz", spikes=np.zeros((30, 7), np.uint8))
    assert main(["run", str(ckpt), "--input", str(tmp_path / "wrong.npz")]) == 2
    assert "expects 6" in capsys.readouterr().err
    assert not (tmp_path / "nothing.npz").exists()


def test_verify_prints_mismatch_per_format(tmp_path, capsys):
    import json

    import torch

    from neuro.checkpoint import save_checkpoint
    from neuro.models import SpikingMLP, SpikingMLPConfig

    m = SpikingMLP(SpikingMLPConfig(layers=[12, 10, 3], reset="zero"))
    with torch.no_grad():
        m[0].weight.mul_(5)
    ckpt = save_checkpoint(tmp_path / "m.safetensors", m, name=m.name, config=m.config_dict())
    assert main(["verify", str(ckpt), "--formats", "loihi2,int8", "--out", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "format loihi2" in out and "format int8" in out and "first diff" in out
    rep = json.loads((tmp_path / "r.json").read_text())
    assert [r["format"] for r in rep["reports"]] == ["loihi2", "int8"]
    assert main(["verify", str(ckpt), "--formats", "nope"]) == 2
    assert main(["verify", str(ckpt), "--targets", "nope"]) == 2
    assert "unknown hardware target" in capsys.readouterr().err


def test_info_describes_a_saved_graph(tmp_path, capsys):
    from neuro.graph import from_module
    from neuro.models import SpikingMLP, SpikingMLPConfig

    from_module(SpikingMLP(SpikingMLPConfig(layers=[8, 6, 2]))).save(tmp_path / "g")
    assert main(["info", str(tmp_path / "g")]) == 0
    out = capsys.readouterr().out
    assert "kind: graph" in out and "LIF -> [6]" in out and "format: float" in out
    (tmp_path / "empty").mkdir()
    assert main(["info", str(tmp_path / "empty")]) == 2


def test_train_delay_snn_offline_and_bad_config(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"n_hidden": 16, "batch_size": 128}')
    assert main(["train", "delay-snn", "--epochs", "1", "--config", str(cfg), "--out",
                 str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "model.safetensors").is_file()
    assert "test accuracy" in capsys.readouterr().out
    cfg.write_text('{"hidden": 16}')
    assert main(["train", "delay-snn", "--config", str(cfg), "--out", str(tmp_path / "r2")]) == 2
    assert "unknown keys" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # not a family in the table: a usage error
        main(["train", "no-such-family", "--out", str(tmp_path / "r3")])
    assert e.value.code == 2
    assert not (tmp_path / "r2").exists() and not (tmp_path / "r3").exists()


def test_energy_command_writes_reports_and_rejects_bad_input(tmp_path, capsys):
    import json

    from neuro.checkpoint import save_checkpoint
    from neuro.models import SpikingMLP, SpikingMLPConfig

    m = SpikingMLP(SpikingMLPConfig(layers=[12, 10, 3], reset="zero"))
    ckpt = save_checkpoint(tmp_path / "m.safetensors", m, name=m.name, config=m.config_dict())
    out = tmp_path / "energy"
    assert main(["energy", str(ckpt), "--out", str(out), "--targets", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown energy target 'nope'" in err and not out.exists()
    assert main(["energy", str(ckpt), "--out", str(out), "--data", str(tmp_path / "missing.npz")]) == 2
    assert not out.exists()
    assert main(["energy", str(ckpt), "--out", str(out), "--targets", "snn-45nm,loihi"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    assert rep and "ann-45nm" in capsys.readouterr().out


def test_train_lsm_offline_writes_a_checkpoint_that_exports(tmp_path, capsys):
    out = tmp_path / "lsm"
    assert main(["train", "lsm", "--task", "audio", "--out", str(out)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    ckpt = out / "model.safetensors"
    assert main(["export", str(ckpt), "--target", "spinnaker", "--out", str(tmp_path / "spin")]) == 0
    with pytest.raises(SystemExit) as e:  # an option of another family
        main(["train", "delay-snn", "--readout", "ridge", "--out", str(tmp_path / "x")])
    assert e.value.code == 2 and "unrecognized arguments: --readout" in capsys.readouterr().err


def test_family_commands_and_config_readers_come_from_the_table(tmp_path, capsys):
    """``neuro generate`` is SpikeGPT's command, registered through its table entry; its
    ``--config`` takes preset names (the family's reader) as well as JSON files."""
    from neuro.models import FAMILIES
    from neuro.models.base import Trained, save_trained
    from neuro.models.spikegpt import SpikeGPT, SpikeGPTConfig

    assert FAMILIES["spikegpt"].read_config("tiny") == {"preset": "tiny"}
    args = build_parser().parse_args(["generate", "m.safetensors", "--prompt", "ab"])
    assert args.func is FAMILIES["spikegpt"].commands[0].run
    from neuro.datasets.text import ByteTokenizer

    model = SpikeGPT(SpikeGPTConfig.from_dict({**SpikeGPTConfig().to_dict(), "n_layer": 1, "n_embd": 16,
                                               "vocab_size": 256, "vocab": ByteTokenizer().to_dict()}))
    ckpt = save_trained(tmp_path / "m.safetensors", Trained(model, {}, ""))
    assert main(["generate", str(ckpt), "--prompt", "ab", "--tokens", "5", "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert main(["generate", str(ckpt), "--prompt", "ab", "--tokens", "5", "--seed", "3"]) == 0
    assert capsys.readouterr().out == first  # deterministic for a seed


def test_generate_with_int8_weights(tmp_path, capsys):
    """``neuro generate --weights int8`` streams text with the int8 step (deterministic for a
    seed); an unknown format is a one-line usage error."""
    from neuro.datasets.text import ByteTokenizer
    from neuro.models.base import Trained, save_trained
    from neuro.models.spikegpt import SpikeGPT, SpikeGPTConfig

    model = SpikeGPT(SpikeGPTConfig.from_dict({**SpikeGPTConfig().to_dict(), "n_layer": 1,
                                               "n_embd": 16, "vocab_size": 256,
                                               "vocab": ByteTokenizer().to_dict()}))
    ckpt = save_trained(tmp_path / "m.safetensors", Trained(model, {}, ""))
    argv = ["generate", str(ckpt), "--prompt", "ab", "--tokens", "8", "--seed", "3"]
    assert main([*argv, "--weights", "int8"]) == 0
    first = capsys.readouterr().out
    assert len(first) > 0
    assert main([*argv, "--weights", "int8"]) == 0
    assert capsys.readouterr().out == first
    with pytest.raises(SystemExit) as e:
        main([*argv, "--weights", "fp4"])
    assert e.value.code == 2 and "--weights" in capsys.readouterr().err
