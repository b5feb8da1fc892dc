"""The one input-spike validator and the JSON shape checker (neuro.validate)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from neuro.limits import LimitError
from neuro.validate import SchemaError, SpikeError, check_json, check_spikes


@pytest.mark.parametrize("dtype", [bool, np.uint8, np.int8, np.int64, np.uint64, np.float16,
                                   np.float32, np.float64])
def test_every_allowed_dtype_passes_with_exact_zeros_and_ones(dtype):
    x = (np.arange(12).reshape(4, 3) % 2).astype(dtype)
    out = check_spikes(x)
    assert out.shape == (4, 1, 3) and out.dtype == x.dtype
    assert check_spikes(x.reshape(4, 1, 3)).shape == (4, 1, 3)


@pytest.mark.parametrize("x, message", [
    (np.full((2, 3), 2**64 - 1, np.uint64), "values up to 18446744073709551615"),
    (np.full((2, 3), 1e30), "values up to 1e"),
    (np.full((2, 3), np.finfo(np.float64).max), "values up to"),
    (np.full((2, 3), 0.999), "holds the value 0.999"),
    (np.full((2, 3), -0.0) - 1e-9, "negative values"),
    (np.ones((2, 3), np.complex128), "dtype complex128"),
    (np.array([[None, 1]], object), "dtype object"),
    (np.array([[np.inf, 0]]), "NaN or infinite"),
    (np.zeros((0, 3)), "T = 0"),
    (np.zeros((2, 0, 3)), "B = 0"),
    (np.zeros((2, 0)), "no input channels"),
    (np.zeros(5), r"\[T, N\] or \[T, B, N\]"),
    (np.zeros((2, 2, 2, 2)), r"\[T, N\] or \[T, B, N\]"),
])
def test_refused_inputs_name_the_problem(x, message):
    with pytest.raises(SpikeError, match=message):
        check_spikes(x, "in.npz")


def test_counts_up_to_max_count_and_feature_shapes():
    x = np.full((3, 2, 4), 3, np.int32)
    with pytest.raises(SpikeError, match="0 or 1"):
        check_spikes(x, feature_shape=(4,))
    assert check_spikes(x, feature_shape=(4,), max_count=3).shape == (3, 2, 4)
    assert check_spikes(np.zeros((3, 2, 2, 2)), feature_shape=(2, 2)).shape == (3, 2, 2, 2)
    with pytest.raises(SpikeError, match=r"expected \[T, 4\] or \[T, B, 4\], got \(3, 3\)"):
        check_spikes(np.zeros((3, 3)), feature_shape=(4,))


def test_size_limit_is_checked_before_looking_at_values(monkeypatch):
    monkeypatch.setenv("NEURO_MAX_ELEMENTS", "100")
    with pytest.raises(LimitError, match="NEURO_MAX_ELEMENTS"):
        check_spikes(np.zeros((11, 10)))
    monkeypatch.setenv("NEURO_MAX_ELEMENTS", "abc")
    with pytest.raises(LimitError, match="expected a positive integer"):
        check_spikes(np.zeros((2, 2)))


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(dtype=st.one_of(hnp.scalar_dtypes(), hnp.unsigned_integer_dtypes()),
                  shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)))
def test_any_array_is_accepted_exactly_when_it_is_0_1_spikes(x):
    """Property: either a SpikeError, or the values are exactly {0, 1} and the shape is valid."""
    try:
        out = check_spikes(x)
    except SpikeError:
        return
    assert x.dtype.kind in "biuf" and x.ndim in (2, 3) and x.size > 0
    assert set(np.unique(out.astype(np.float64)).tolist()) <= {0.0, 1.0}
    assert np.array_equal(out.astype(np.int64).astype(x.dtype), out)  # the cast is exact


SCHEMA = {"target": str, "files": {str: str}, "?n": int, "layers": [{"name": str, "w": float}]}


def test_check_json_names_the_key_path():
    good = {"target": "fpga", "files": {"a": "b"}, "layers": [{"name": "l", "w": 1}], "extra": 1}
    assert check_json(good, SCHEMA, "m.json") is good
    for bad, message in [
        ([], "top level: expected an object, got a list"),
        ({"files": {}, "layers": []}, "missing key 'target'"),
        ({**good, "files": {"a": 3}}, r"files.a: expected a string, got int"),
        ({**good, "n": True}, "n: expected an integer, got a boolean"),
        ({**good, "layers": [{"name": "l", "w": "x"}]}, r"layers\[0\].w: expected a number"),
        ({**good, "layers": {"name": "l"}}, "layers: expected a list, got an object"),
    ]:
        with pytest.raises(SchemaError, match=message):
            check_json(bad, SCHEMA, "m.json")


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                           lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                           max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_check_json_raises_only_schema_errors(value):
    try:
        check_json(value, SCHEMA, "m.json")
    except SchemaError:
        pass
