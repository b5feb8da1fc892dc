"""The package's own readers on mutated input (issue 19, property-based): checkpoints, graph
directories, artifact manifests and NIR files. Any exception other than ``ValueError`` (the
documented error type; the CLI prints it in one line) fails the test."""
import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuro.checkpoint import read_checkpoint, save_checkpoint
from neuro.graph import Graph, from_module
from neuro.hardware.base import read_manifest, write_artifact
from neuro.models import SpikingMLP, SpikingMLPConfig

FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _mutations(seed: bytes):
    n = len(seed)
    return st.one_of(
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, 255)), min_size=1,
                 max_size=4).map(lambda fl: _flip(seed, fl)),
        st.integers(0, n - 1).map(lambda k: seed[:k]),
    )


def _flip(seed, flips):
    data = bytearray(seed)
    for i, x in flips:
        data[i] ^= x
    return bytes(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**13) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=12)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return SpikingMLP(SpikingMLPConfig(layers=[4, 3, 2]))


@pytest.fixture(scope="module")
def seeds(model, tmp_path_factory):
    d = tmp_path_factory.mktemp("seeds")
    ckpt = save_checkpoint(d / "m.safetensors", model, name=model.name, config=model.config_dict())
    g = from_module(model)
    g.save(d / "graph")
    return {"ckpt": ckpt.read_bytes(), "graph": g, "graph_json": json.loads(
        (d / "graph" / "graph.json").read_text()), "arrays": (d / "graph" / "arrays.npz").read_bytes()}


@FUZZ
@given(data=st.data())
def test_checkpoint_mutated(tmp_path, seeds, data):
    p = tmp_path / "m.safetensors"
    p.write_bytes(data.draw(_mutations(seeds["ckpt"])))
    try:
        tensors, meta = read_checkpoint(p)
    except ValueError:
        return
    assert all(bool(torch.isfinite(t).all()) for t in tensors.values() if t.is_floating_point())


def _replace_somewhere(doc, path_choice, value):
    """``doc`` with the value at one of its key paths replaced by ``value``."""
    paths = []

    def walk(v, at):
        paths.append(at)
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, (*at, k))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                walk(x, (*at, i))

    walk(doc, ())
    at = paths[path_choice % len(paths)]
    if not at:
        return value
    doc = json.loads(json.dumps(doc))
    cur = doc
    for k in at[:-1]:
        cur = cur[k]
    cur[at[-1]] = value
    return doc


@FUZZ
@given(choice=st.integers(0, 10**6), value=json_values, npz=st.booleans(), data=st.data())
def test_graph_directory_mutated(tmp_path, seeds, choice, value, npz, data):
    d = tmp_path / "g"
    d.mkdir(exist_ok=True)
    doc = _replace_somewhere(seeds["graph_json"], choice, value)
    (d / "graph.json").write_text(json.dumps(doc))
    arrays = data.draw(_mutations(seeds["arrays"])) if npz else seeds["arrays"]
    (d / "arrays.npz").write_bytes(arrays)
    try:
        g = Graph.load(d)
    except ValueError:
        return
    assert isinstance(g, Graph)


@FUZZ
@given(choice=st.integers(0, 10**6), value=json_values)
def test_manifest_mutated(tmp_path, seeds, choice, value):
    art = tmp_path / "art"
    if not art.exists():
        write_artifact(art, target="fake", graph=seeds["graph"], write_files=lambda d: {})
        (tmp_path / "manifest.json").write_bytes((art / "manifest.json").read_bytes())
    good = json.loads((tmp_path / "manifest.json").read_text())
    (art / "manifest.json").write_text(json.dumps(_replace_somewhere(good, choice, value)))
    try:
        m = read_manifest(art)
    except ValueError:
        return
    assert isinstance(m["files"], dict) and isinstance(m["sha256"], dict)


@pytest.fixture(scope="module")
def nir_seed(seeds, tmp_path_factory):
    from neuro.graph import nir_io

    p = nir_io.write_nir(nir_io.to_nir(seeds["graph"]), tmp_path_factory.mktemp("nir") / "m.nir")
    return p.read_bytes()


@FUZZ
@given(data=st.data())
def test_nir_mutated(tmp_path, nir_seed, data):
    from neuro.graph.nir_io import read_nir

    p = tmp_path / "m.nir"
    p.write_bytes(data.draw(_mutations(nir_seed)))
    try:
        g = read_nir(p)
    except ValueError:
        return
    for node in g.nodes.values():
        for v in vars(node).values():
            if isinstance(v, np.ndarray) and v.dtype.kind == "f":
                assert np.isfinite(v).all()


def test_type_errors_are_bugs_not_user_errors(monkeypatch, capsys):
    """A TypeError/AttributeError inside a command is a bug: it propagates (a traceback), it is
    not reported as a user error with exit status 2."""
    from neuro import cli

    def boom(args):
        raise TypeError("a bug")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda argv=None: parser)
    parser._subparsers._group_actions[0].choices["info"].set_defaults(func=boom)
    with pytest.raises(TypeError, match="a bug"):
        cli.main(["info", "x"])


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["delay-snn", "spiking-mlp", "lsm"]),
       st.dictionaries(st.sampled_from(["n_inputs", "n_hidden", "n_layers", "n_outputs",
                                        "max_delay", "tau", "delays", "layers", "size", "grid",
                                        "n_steps", "beta", "reset", "surrogate", "dt", "bogus"]),
                       json_values, max_size=4))
def test_model_config_from_json_raises_only_value_errors(name, cfg):
    """A checkpoint's (or --config's) JSON config: wrong types, sizes of 0 or 10**13, unknown
    keys are ValueErrors before any model is built."""
    from neuro.models import BUILDERS

    configs = {"delay-snn": "DelaySNNConfig", "spiking-mlp": "SpikingMLPConfig", "lsm": "LSMConfig"}
    import neuro.models as models

    cls = getattr(models, configs[name], None)
    if cls is None:
        from neuro.models.lsm import LSMConfig as cls
    try:
        c = cls.from_dict(cfg)
    except ValueError:
        return
    assert name in BUILDERS and c.to_dict()


def test_nir_with_a_malformed_carried_field_reads_the_nir_values(tmp_path, nir_seed):
    """Found by the fuzzer: one flipped byte turns neuro's ``"__array__"`` marker of a carried
    field into ``"^_array__"``, so the field decodes to a dict; it was a TypeError, now the field
    is ignored and the NIR parameters are read (the same outputs as the intact file)."""
    from neuro.graph.nir_io import read_nir

    assert nir_seed.count(b'"beta": {"__array__"') >= 1
    (tmp_path / "ok.nir").write_bytes(nir_seed)
    (tmp_path / "flip.nir").write_bytes(nir_seed.replace(b'"beta": {"__array__"',
                                                         b'"beta": {"^_array__"', 1))
    ok, flip = read_nir(tmp_path / "ok.nir", 1e-3), read_nir(tmp_path / "flip.nir", 1e-3)
    import torch

    from neuro.graph import simulate

    x = (torch.rand(20, 3, *ok.nodes[ok.inputs()[0]].shape) < 0.3).float()
    a, b = simulate(ok, x), simulate(flip, x)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
