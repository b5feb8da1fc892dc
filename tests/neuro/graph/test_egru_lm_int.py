"""The integer EGRU language model (``neuro.graph.egru_lm_int``): the decoder head by hand, the
integer logits against the float model, save/load, and the refusals that name the node."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neuro.graph import Graph, GraphError, from_module, simulate
from neuro.graph import lm_nodes as LM
from neuro.graph import nodes as N
from neuro.graph.egru_lm_int import Readout, dequantize_logits, embed
from neuro.graph.intsim import simulate_int
from neuro.graph.quantize import quantize
from neuro.models.egru.config import EGRULMConfig
from neuro.models.egru.model import EGRULanguageModel
from neuro.models.spikegpt.graph import one_hot_tokens


def tiny_lm(seed: int = 0) -> EGRULanguageModel:
    torch.manual_seed(seed)
    model = EGRULanguageModel(EGRULMConfig(vocab_size=50, emb_dim=16, hidden_sizes=[24, 16],
                                           thr_mean=0.1)).eval()
    with torch.no_grad():  # inputs strong enough for the units to emit
        for layer in model.layers:
            layer.kernel.mul_(3)
        model.decoder_bias.uniform_(-0.5, 0.5)
    return model


def tokens(T=60, B=2, V=50, seed=1):
    return np.asarray(one_hot_tokens(np.random.default_rng(seed).integers(0, V, (T, B)), V))


def test_readout_by_hand():
    # W = [[0.5, -0.25], [1.0, 0.0], [-2^-14, 0]], b = [0.1, -0.2, 0]; s16.15: the largest weight
    # 1.0 fits 16 bits with kf = 14 (2^15 would be 32768 > 32767)
    node = N.Affine(weight=np.array([[8192, -4096], [16384, 0], [-1, 0]], np.int32),
                    bias=np.array([3277, -6554, 0]))
    ro = Readout("decoder", node, {"kernel_frac": 14, "frac_bits": 15, "state_bits": 32})
    y = np.array([[[32768, 16384]], [[1, 0]]])  # [T=2, B=1, H=2]: y = (1.0, 0.5), then 2^-15
    got = ro(y)
    # step 0: (32768*8192 - 16384*4096) >> 14 = 12288, + 3277; 32768*16384 >> 14 = 32768, - 6554
    # step 1: 8192 >> 14 = 0 (+3277); 16384 >> 14 = 1 (-6554); -1 >> 14 = -1 (floor, not 0)
    assert got[0, 0].tolist() == [15565, 26214, -2]  # (32768 * -1) >> 14 = -2
    assert got[1, 0].tolist() == [3277, -6553, -1]
    # float: 0.5 - 0.125 + 0.1 = 0.475 -> 15564.8 in s16.15
    assert abs(got[0, 0, 0] / 2**15 - 0.475) < 2**-14


def test_quantize_lm_registers_and_logits_follow_the_float_model():
    g = from_module(tiny_lm())
    x = tokens()
    f = simulate(g, x)["output"].numpy()
    for fmt, F in (("spinnaker", 15), ("int16", 12)):
        q = quantize(g, fmt)
        assert q.nodes["embedding"].weight.dtype == np.int64
        regs = q.metadata["egru_lm"]
        assert regs["embedding"] == {"embedding": {"frac_bits": F}}
        assert regs["readout"]["decoder"]["source"] == "layers.1"
        assert q.nodes["layers.0"].q["in_frac"] == F and q.nodes["layers.1"].q["in_frac"] == F
        out = simulate_int(q, {"input": x.astype(np.int64)}, record=True)
        # the embedding's integer rows are the float rows rounded to F fraction bits
        rows = out["embedding"] / 2.0**F
        assert np.abs(rows - simulate(g, x, record=True)["embedding"].numpy()).max() <= 2.0**-(F + 1)
        logits = dequantize_logits(out["output"], q)
        assert np.abs(logits - f).mean() < 0.01, fmt
        assert (logits.argmax(-1) == f.argmax(-1)).mean() > 0.9, fmt


def test_saved_quantized_lm_keeps_integer_tables(tmp_path):
    q = quantize(from_module(tiny_lm()), "spinnaker")
    q.save(tmp_path / "g")
    q2 = Graph.load(tmp_path / "g")
    assert q2.nodes["embedding"].weight.dtype.kind == "i"
    x = {"input": tokens(T=20).astype(np.int64)}
    assert np.array_equal(simulate_int(q, x)["output"], simulate_int(q2, x)["output"])


def test_embedding_needs_one_hot_tokens():
    with pytest.raises(ValueError, match="node 'emb' \\(Embedding\\): its input must be one-hot"):
        embed("emb", np.zeros((3, 2), np.int64), np.array([[[1, 1, 0]]]))


def test_refusals_name_the_node():
    g = from_module(tiny_lm())
    g.nodes["embedding"].binary = True
    with pytest.raises(GraphError, match="'embedding' \\(Embedding\\): a binary embedding"):
        quantize(g, "spinnaker")
    g = from_module(tiny_lm())
    with pytest.raises(GraphError, match="no integer EGRU"):
        quantize(g, "int8")
    big = from_module(tiny_lm())
    big.nodes["embedding"].weight = big.nodes["embedding"].weight * 1e7
    with pytest.raises(GraphError, match="'embedding' \\(Embedding\\): field 'weight' holds"):
        quantize(big, "spinnaker")
    assert isinstance(big.nodes["embedding"], LM.Embedding)
