"""What a researcher needs from the report: the model's accuracy on the data, several samples and
the readout trace in the activity figure, static power in the comparison, a table of contents."""
import numpy as np
import torch

from neuro.energy.cli import load_labels, model_accuracy
from neuro.energy.counting import RASTER_SAMPLES, count
from neuro.energy.report import accuracy_text
from neuro.graph import from_module
from neuro.models import SpikingMLP, SpikingMLPConfig


def _model():
    torch.manual_seed(0)
    m = SpikingMLP(SpikingMLPConfig(layers=[10, 8, 3], reset="zero"))
    with torch.no_grad():
        m[0].weight.mul_(4)
    return m.eval()


def test_accuracy_is_measured_when_the_data_has_labels(tmp_path):
    m = _model()
    x = (np.random.default_rng(0).random((30, 6, 10)) < 0.3).astype(np.float32)
    pred = m.predict(torch.from_numpy(x)).numpy()
    wrong = (pred + 1) % 3
    wrong[:2] = pred[:2]  # 2 of 6 right
    np.savez(tmp_path / "d.npz", spikes=x.astype(np.uint8), labels=wrong)
    labels = load_labels(tmp_path / "d.npz", None, x.shape)
    acc = model_accuracy(m, x, labels, {"test_accuracy": [0.5, 0.75]})
    assert acc == {"value": 2 / 6, "samples": 6, "recorded": 0.75}
    assert accuracy_text({"accuracy": acc}) == ("accuracy of the float model on this data: 0.333 "
                                                "(6 labelled samples)")
    np.savez(tmp_path / "n.npz", spikes=x.astype(np.uint8))  # no labels: say what is known
    none = model_accuracy(m, x, load_labels(tmp_path / "n.npz", None, x.shape), {"test_accuracy": [0.75]})
    assert none["value"] is None and "training recorded a test accuracy of 0.750" in accuracy_text(
        {"accuracy": none})
    assert "unknown" in accuracy_text({})
    np.savez(tmp_path / "bad.npz", spikes=x.astype(np.uint8), labels=np.zeros(5))
    assert load_labels(tmp_path / "bad.npz", None, x.shape) is None  # 5 labels for 6 samples


def test_counts_keep_several_samples_and_the_readout_trace():
    g = from_module(_model())
    x = (np.random.default_rng(0).random((25, 5, 10)) < 0.3).astype(np.float32)
    c = count(g, x, batch_size=4, progress=False)
    spiking = [n for n, p in c.populations.items() if p.spiking]
    assert all(c.rasters[n].shape[:2] == (25, RASTER_SAMPLES) for n in spiking)
    assert all(np.array_equal(c.rasters[n][:, 0], c.raster[n]) for n in spiking)
    (readout,) = c.readouts.values()
    assert readout.shape == (25, RASTER_SAMPLES, 3) and np.abs(readout).sum() > 0


def test_report_names_layers_as_the_model_does(tmp_path):
    """A DelaySNN is a flat Sequential (nodes "0", "1", ...): the report names its layers by
    their role (``DelaySNN.layer_names``: ``hidden.0.lif``, ``readout.li``) and records which
    graph node each is."""
    import json

    from neuro.checkpoint import save_checkpoint
    from neuro.energy.cli import run
    from neuro.models import DelaySNN, DelaySNNConfig

    torch.manual_seed(0)
    m = DelaySNN(DelaySNNConfig(n_inputs=10, n_hidden=12, n_layers=2, n_outputs=3, max_delay=5,
                                dropout=0.0, right_padding=0))
    ckpt = save_checkpoint(tmp_path / "m.safetensors", m, name=m.name, config=m.config_dict())
    x = (np.random.default_rng(0).random((20, 4, 10)) < 0.3).astype(np.uint8)
    np.savez(tmp_path / "d.npz", spikes=x)
    paths = run(ckpt, tmp_path / "d.npz", tmp_path / "rep", targets="snn-45nm", progress=False,
                run_simulators=False)
    doc = json.loads(paths["json"].read_text())
    pops, syns = doc["counts"]["populations"], doc["counts"]["synapses"]
    assert list(pops) == ["input", "hidden.0.lif", "hidden.1.lif", "readout.li"]
    assert list(syns) == ["hidden.0.synapse", "hidden.1.synapse", "readout.synapse"]
    names = doc["model"]["layer_names"]
    assert names["hidden.0.lif"] == "2" and names["readout.li"] == "9"
    html = paths["html"].read_text()
    assert "hidden.1.lif" in html and "hidden.1.lif = 6" in html
