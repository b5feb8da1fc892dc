"""A corpus of malformed inputs (46 cases), one or more per class of issue 19, through the ``neuro`` command.

Every case must exit with status 2 and print exactly one line, ``neuro: error: ...`` naming the
problem; write nothing at its ``--out``; execute nothing (pickle payloads create a marker file if
they ever run); and stay within an address-space limit (the cases run in one subprocess under
``RLIMIT_AS``, see ``cli_corpus_driver.py``).
"""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent
LIMIT = 3 << 30  # address space of the driver: torch and friends map about 0.8 GiB

# name -> the text the error line must contain
EXPECT = {
    "run_uint64_wraps": "values up to 18446744073709551615",
    "run_float_1e30": "values up to 1e+30",
    "run_complex": "dtype complex128 is not allowed",
    "run_fraction": "holds the value 0.5",
    "run_T0": "T = 0",
    "run_B0": "B = 0",
    "run_garbage_npz": "not a readable .npz file",
    "run_truncated_npz": "not a readable .npz file",
    "run_header_1e12": "NEURO_MAX_ELEMENTS",
    "run_zip_bomb": "NEURO_MAX_",
    "run_pickle_npz": "object dtype",
    "run_artifact_uint64": "values up to",
    "run_tampered_onnx": "step.onnx: does not match the manifest's digest",
    "run_tampered_weights_dtype": "weights.npz: does not match the manifest's digest",
    "run_tampered_spinnaker": "synapses.npz: does not match the manifest's digest",
    "run_manifest_list": "manifest.json: expected a JSON object",
    "run_manifest_deep": "nested",
    "run_manifest_missing_files": "missing key 'files'",
    "run_out_parent_is_file": "is not a directory",
    "info_graph_list": "graph.json: top level: expected an object, got a list",
    "info_graph_no_nodes": "missing key 'nodes'",
    "info_pickle_checkpoint": "not a readable safetensors checkpoint",
    "verify_values_2": "values up to 2",
    "export_T0": "T = 0",
    "export_over_other_target": "holds an artifact for target 'spinnaker', not 'fpga'",
    "export_nir_into_artifact": "holds a hardware artifact",
    "energy_values_2": "values up to 2",
    "energy_costs_deep": "nested",
    "import_nir_nan": "nan.nir: node",  # the file, then the node and field
    "run_artifact_unlisted_file": "file 'graph/extra.npz' is not listed in manifest.json",
    "run_artifact_v1": "--target fpga --out",
    "run_checkpoint_huge_config": "NEURO_MAX_MODEL_BYTES",
    "train_delay_snn_many_layers": "NEURO_MAX_MODEL_BYTES",
    "train_lsm_huge_reservoir": "NEURO_MAX_MODEL_BYTES",
    "train_spikegpt_wide": "NEURO_MAX_MODEL_BYTES",
    "train_egru_lm_wide": "NEURO_MAX_MODEL_BYTES",
    "train_egru_gesture_wide": "NEURO_MAX_MODEL_BYTES",
    "train_shd_ragged_huge": "variable-length elements",
    "train_out_empty": "--out: an empty path",
    "train_egru_max_batches_0": "max_batches must be >= 1",
    "import_nir_deep_groups": "nested more than",
    "train_width_1e12": "over the limit",
    "train_hidden_0": "sizes must be at least 1",
    "train_config_wrong_type": "n_hidden = 'wide' has the wrong type",
    "train_nmnist_fifo": "no .bin files",
    "train_nmnist_symlink_loop": "symlink loop",
}


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def _zip_bomb(path, nbytes):
    header = f"{{'descr': '|u1', 'fortran_order': False, 'shape': ({nbytes},), }}".encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf, \
            zf.open("spikes.npy", "w", force_zip64=True) as w:
        w.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)
        block = bytes(1 << 20)
        for _ in range(nbytes >> 20):
            w.write(block)
    return str(path)


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _cases(d: Path) -> tuple[dict, dict]:
    import h5py
    import torch

    from neuro.checkpoint import save_checkpoint
    from neuro.graph import from_module, nir_io
    from neuro.hardware import fpga, spinnaker
    from neuro.models import SpikingMLP, SpikingMLPConfig

    torch.manual_seed(0)
    m = SpikingMLP(SpikingMLPConfig(layers=[6, 5, 3], reset="zero"))
    ckpt = str(save_checkpoint(d / "m.safetensors", m, name=m.name, config=m.config_dict()))
    rng = np.random.default_rng(0)
    good = (rng.random((12, 2, 6)) < 0.3).astype(np.uint8)
    g = from_module(m)
    art = {"fpga": fpga.compile(g, d / "fpga", calibration_inputs=good),
           "spinnaker": spinnaker.compile(g, d / "spinnaker", calibration_inputs=good)}

    def tampered(name, edit):
        dst = d / name
        shutil.copytree(art["fpga"] if "spinnaker" not in name else art["spinnaker"], dst)
        edit(dst)
        return str(dst)

    def recast_weights(a):
        with np.load(a / "weights.npz") as f:
            arrays = {k: f[k] for k in f.files}
        k = next(iter(arrays))
        arrays[k] = arrays[k].astype(np.int32)  # same values, another dtype
        np.savez(a / "weights.npz", **arrays)

    def flip(path):
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))

    def drop_files(a):
        mf = json.loads((a / "manifest.json").read_text())
        del mf["files"]
        (a / "manifest.json").write_text(json.dumps(mf))

    def version_1(a):
        mf = json.loads((a / "manifest.json").read_text())
        mf["artifact_version"] = 1
        del mf["sha256"]
        (a / "manifest.json").write_text(json.dumps(mf))

    (d / "garbage.npz").write_bytes(b"PK\x03\x04 this is no zip")
    full = (d / "full.npz")
    np.savez_compressed(full, spikes=good)
    (d / "truncated.npz").write_bytes(full.read_bytes()[:200])
    big = 10**12
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({big}, 6), }}".encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    with zipfile.ZipFile(d / "h1e12.npz", "w") as zf:
        zf.writestr("spikes.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little")
                    + header + bytes(64))
    np.savez(d / "pickle.npz", spikes=np.array([_Evil(d / "EXECUTED")], dtype=object))
    torch.save({"x": _Evil(d / "EXECUTED")}, d / "evil.pt")
    gl = d / "graph_list"
    gl.mkdir()
    (gl / "graph.json").write_text("[]")
    gn = d / "graph_nokeys"
    gn.mkdir()
    (gn / "graph.json").write_text('{"format_version": 1, "edges": []}')
    (d / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    (d / "big.json").write_text(json.dumps({"n_hidden": 10**12, "n_inputs": 4}))
    (d / "zero.json").write_text(json.dumps({"n_hidden": 0}))
    (d / "wide.json").write_text(json.dumps({"n_hidden": "wide"}))
    (d / "a_file").write_text("x")
    for name, cfg in (("layers", {"n_hidden": 1000, "n_layers": 10**6}), ("lsm", {"size": 10**6}),
                      ("gpt", {"n_embd": 10**6}), ("egru", {"emb_dim": 10**5, "hidden_sizes": [10**5]}),
                      ("gesture", {"hidden_size": 10**6})):
        (d / f"huge_{name}.json").write_text(json.dumps(cfg))
    from safetensors.torch import save_file  # tiny tensors, a config declaring 1e8 units
    save_file({"w": torch.zeros(1)}, str(d / "huge.safetensors"), metadata={
        "neuro_format": "1", "model": "delay-snn", "config": json.dumps({"n_hidden": 10**8}),
        "info": "{}"})
    shd = d / "shd"
    shd.mkdir()
    with h5py.File(shd / "shd_train.h5", "w") as f:  # element 1 declares 4e9 spikes (16 GB)
        sp = f.create_group("spikes")
        for key, dt in (("times", np.float32), ("units", np.uint16)):
            ds = sp.create_dataset(key, (2,), dtype=h5py.vlen_dtype(dt))
            ds[0] = ds[1] = np.zeros(3, dt)
        f.create_dataset("labels", data=np.zeros(2, np.uint16))
        offset, record = f["spikes/times"].id.get_offset(), 8 + f.id.get_create_plist().get_sizes()[0]
    with open(shd / "shd_train.h5", "r+b") as fh:
        fh.seek(offset + record)
        fh.write((4_000_000_000).to_bytes(4, "little"))
    shutil.copy(shd / "shd_train.h5", shd / "shd_test.h5")
    for split in ("Train", "Test"):
        (d / "nm_fifo" / split / "0").mkdir(parents=True)
        os.mkfifo(d / "nm_fifo" / split / "0" / "a.bin")
        (d / "nm_loop" / split / "0").mkdir(parents=True)
        os.symlink("loop.bin", d / "nm_loop" / split / "0" / "loop.bin")
    nir_path = nir_io.write_nir(nir_io.to_nir(g), d / "ok.nir")
    shutil.copy(nir_path, d / "nan.nir")
    with h5py.File(d / "nan.nir", "r+") as f:
        weights = []
        f.visititems(lambda n, o: weights.append(n) if n.endswith("weight") else None)
        ds = f[weights[0]]
        w = ds[()]
        w.flat[0] = np.nan
        ds[...] = w
    shutil.copy(nir_path, d / "deep.nir")
    with h5py.File(d / "deep.nir", "r+") as f:
        grp = f["node"]
        for i in range(100):
            grp = grp.create_group(f"g{i}")

    o = str(d / "out")
    run = ["run", ckpt, "--out", o + ".npz", "--input"]
    cases = {
        "run_uint64_wraps": run + [_npz(d / "u64.npz", spikes=np.full((4, 6), 2**64 - 1, np.uint64))],
        "run_float_1e30": run + [_npz(d / "f.npz", spikes=np.full((4, 6), 1e30))],
        "run_complex": run + [_npz(d / "c.npz", spikes=np.ones((4, 6), np.complex128))],
        "run_fraction": run + [_npz(d / "half.npz", spikes=np.full((4, 6), 0.5))],
        "run_T0": run + [_npz(d / "t0.npz", spikes=np.zeros((0, 6)))],
        "run_B0": run + [_npz(d / "b0.npz", spikes=np.zeros((4, 0, 6)))],
        "run_garbage_npz": run + [str(d / "garbage.npz")],
        "run_truncated_npz": run + [str(d / "truncated.npz")],
        "run_header_1e12": run + [str(d / "h1e12.npz")],
        "run_zip_bomb": run + [_zip_bomb(d / "bomb.npz", 256 << 20)],
        "run_pickle_npz": run + [str(d / "pickle.npz")],
        "run_artifact_uint64": ["run", str(art["fpga"]), "--out", o + ".npz", "--input",
                                str(d / "u64.npz")],
        "run_tampered_onnx": ["run", tampered("t_onnx", lambda a: (a / "step.onnx").write_bytes(
            b"garbage")), "--input", _npz(d / "good.npz", spikes=good), "--out", o + ".npz"],
        "run_tampered_weights_dtype": ["run", tampered("t_w", recast_weights), "--input",
                                       str(d / "good.npz"), "--out", o + ".npz"],
        "run_tampered_spinnaker": ["run", tampered("t_spinnaker", lambda a: flip(
            a / "synapses.npz")), "--input", str(d / "good.npz"), "--out", o + ".npz"],
        "run_manifest_list": ["run", tampered("t_mlist", lambda a: (a / "manifest.json").write_text(
            "[]")), "--input", str(d / "good.npz"), "--out", o + ".npz"],
        "run_manifest_deep": ["run", tampered("t_mdeep", lambda a: shutil.copy(
            d / "deep.json", a / "manifest.json")), "--input", str(d / "good.npz"), "--out", o + ".npz"],
        "run_manifest_missing_files": ["run", tampered("t_mfiles", drop_files), "--input",
                                       str(d / "good.npz"), "--out", o + ".npz"],
        "run_artifact_unlisted_file": ["run", tampered("t_extra", lambda a: (
            a / "graph" / "extra.npz").write_bytes(b"x")), "--input", str(d / "good.npz"),
            "--out", o + ".npz"],
        "run_artifact_v1": ["run", tampered("t_v1", version_1), "--input", str(d / "good.npz"),
                            "--out", o + ".npz"],
        "run_checkpoint_huge_config": ["run", str(d / "huge.safetensors"), "--input",
                                       str(d / "good.npz"), "--out", o + ".npz"],
        "run_out_parent_is_file": ["run", ckpt, "--input", str(d / "good.npz"), "--out",
                                   str(d / "a_file" / "x.npz")],
        "info_graph_list": ["info", str(gl)],
        "info_graph_no_nodes": ["info", str(gn)],
        "info_pickle_checkpoint": ["info", str(d / "evil.pt")],
        "verify_values_2": ["verify", ckpt, "--formats", "int8", "--out", o + ".json", "--input",
                            _npz(d / "two.npz", spikes=np.full((4, 6), 2, np.uint8))],
        "export_T0": ["export", ckpt, "--target", "fpga", "--out", o, "--input", str(d / "t0.npz")],
        "export_over_other_target": ["export", ckpt, "--target", "fpga", "--out",
                                     str(art["spinnaker"])],
        "export_nir_into_artifact": ["export", ckpt, "--target", "nir", "--out", str(art["fpga"])],
        "energy_values_2": ["energy", ckpt, "--out", o, "--data", str(d / "two.npz")],
        "energy_costs_deep": ["energy", ckpt, "--out", o, "--costs", str(d / "deep.json")],
        "import_nir_nan": ["import", str(d / "nan.nir"), "--out", o + ".safetensors"],
        "import_nir_deep_groups": ["import", str(d / "deep.nir"), "--out", o + ".safetensors"],
        "train_width_1e12": ["train", "delay-snn", "--config", str(d / "big.json"), "--out", o,
                             "--epochs", "1"],
        "train_hidden_0": ["train", "delay-snn", "--config", str(d / "zero.json"), "--out", o,
                           "--epochs", "1"],
        "train_config_wrong_type": ["train", "delay-snn", "--config", str(d / "wide.json"),
                                    "--out", o, "--epochs", "1"],
        "train_delay_snn_many_layers": ["train", "delay-snn", "--config", str(d / "huge_layers.json"),
                                        "--out", o, "--epochs", "1"],
        "train_lsm_huge_reservoir": ["train", "lsm", "--config", str(d / "huge_lsm.json"), "--out", o],
        "train_spikegpt_wide": ["train", "spikegpt", "--config", str(d / "huge_gpt.json"), "--out", o],
        "train_egru_lm_wide": ["train", "egru", "--config", str(d / "huge_egru.json"), "--out", o],
        "train_egru_gesture_wide": ["train", "egru", "--task", "gesture", "--config",
                                    str(d / "huge_gesture.json"), "--out", o],
        "train_shd_ragged_huge": ["train", "delay-snn", "--data", str(shd), "--out", o,
                                  "--epochs", "1"],
        "train_out_empty": ["train", "delay-snn", "--out", "", "--epochs", "1"],
        "train_egru_max_batches_0": ["train", "egru", "--max-batches", "0", "--out", o],
        "train_nmnist_fifo": ["train", "lsm", "--data", str(d / "nm_fifo"), "--out", o],
        "train_nmnist_symlink_loop": ["train", "lsm", "--data", str(d / "nm_loop"), "--out", o],
    }
    outs = {name: next((argv[i + 1] for i, a in enumerate(argv) if a == "--out"), None)
            for name, argv in cases.items()}
    outs["export_over_other_target"] = None  # exists before: checked to be unchanged instead
    outs["export_nir_into_artifact"] = str(art["fpga"] / "model.nir")
    return ({name: {"argv": argv, "out": outs[name]} for name, argv in cases.items()},
            {"spinnaker": art["spinnaker"]})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    cases, extra = _cases(d)
    (d / "cases.json").write_text(json.dumps(cases))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run([sys.executable, str(HERE / "cli_corpus_driver.py"), str(d / "cases.json"),
                        str(d / "results.json"), str(LIMIT)], capture_output=True, text=True,
                       timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads((d / "results.json").read_text()), d, extra


def test_the_corpus_covers_every_case(corpus):
    results, _, _ = corpus
    assert set(results) == set(EXPECT)


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_malformed_input_is_one_line_exit_2(corpus, name):
    results, d, extra = corpus
    r = results[name]
    lines = r["stderr"].splitlines()
    assert r["status"] == 2, r["stderr"]
    assert len(lines) == 1 and lines[0].startswith("neuro: error: "), r["stderr"]
    assert EXPECT[name] in lines[0], lines[0]
    assert not r["out_exists"], f"{name} wrote its --out"
    assert not (d / "EXECUTED").exists(), "a pickle payload ran"
    if name == "export_over_other_target":
        assert json.loads((extra["spinnaker"] / "manifest.json").read_text())["target"] == "spinnaker"
