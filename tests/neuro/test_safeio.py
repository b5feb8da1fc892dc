"""Readers of untrusted containers (neuro.safeio): one ReadError/LimitError, never a traceback
from zipfile/zlib/json, never an allocation beyond the NEURO_MAX_* limits."""
import gzip
import io
import json
import os
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuro.limits import LimitError
from neuro.safeio import (
    ReadError,
    bounded_copy,
    parse_json,
    read_json,
    read_npz,
    regular_files,
)

ERRORS = (ReadError, LimitError)


def npz_bytes(**arrays):
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def huge_header_npz(path, shape=(10**6, 10**6), dtype="<f8"):
    """An .npz whose .npy header declares ``shape`` but holds 16 bytes of data."""
    header = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 16
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("spikes.npy", npy)
    return path


def test_good_npz_roundtrip(tmp_path):
    p = tmp_path / "a.npz"
    p.write_bytes(npz_bytes(spikes=np.eye(3, dtype=np.uint8), f=np.asfortranarray(np.ones((2, 3)))))
    out = read_npz(p)
    assert np.array_equal(out["spikes"], np.eye(3)) and out["f"].shape == (2, 3)
    assert read_npz(p, ["spikes"]).keys() == {"spikes"}
    with pytest.raises(ReadError, match="no array 'x'"):
        read_npz(p, ["x"])
    assert read_npz(p, ["x"], required=False) == {}


def test_corrupt_containers(tmp_path):
    good = npz_bytes(spikes=np.random.default_rng(0).integers(0, 2, (50, 50), np.uint8))
    at = len(good) // 3  # inside the deflate stream
    cases = {
        "garbage": b"not a zip at all",
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "flipped": good[:at] + bytes([good[at] ^ 0xFF]) + good[at + 1:],
    }
    for name, data in cases.items():
        p = tmp_path / f"{name}.npz"
        p.write_bytes(data)
        with pytest.raises(ReadError, match=f"{name}.npz"):
            read_npz(p)


def _patch_member_header(data, offset, fmt, value):
    """Set a field of the first local file header and of the central directory entry."""
    data = bytearray(data)
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    struct.pack_into(fmt, data, local + offset, value)
    struct.pack_into(fmt, data, central + offset + 2, value)
    return bytes(data)


def test_encrypted_and_unknown_compression_members(tmp_path):
    good = npz_bytes(spikes=np.zeros((4, 4), np.uint8))
    enc = tmp_path / "enc.npz"
    enc.write_bytes(_patch_member_header(good, 6, "<H", 0x1))  # general purpose flag: encrypted
    with pytest.raises(ReadError, match="encrypted"):
        read_npz(enc)
    lzma = tmp_path / "method.npz"
    lzma.write_bytes(_patch_member_header(good, 8, "<H", 99))  # compression method 99 (AE-x)
    with pytest.raises(ReadError, match="compression method 99"):
        read_npz(lzma)


def test_declared_sizes_are_checked_before_allocating(tmp_path, monkeypatch):
    with pytest.raises(LimitError, match="NEURO_MAX_ELEMENTS"):
        read_npz(huge_header_npz(tmp_path / "h.npz"))
    with pytest.raises(ReadError, match="truncated"):
        read_npz(huge_header_npz(tmp_path / "t.npz", shape=(100,)))
    with pytest.raises(ReadError, match="object dtype"):
        read_npz(huge_header_npz(tmp_path / "o.npz", shape=(1,), dtype="|O"))
    bomb = tmp_path / "bomb.npz"  # 64 MiB of zeros in ~64 KiB: ratio ~1000
    bomb.write_bytes(npz_bytes(spikes=np.zeros(64 << 20, np.uint8)))
    monkeypatch.setenv("NEURO_MAX_INFLATE_RATIO", "100")
    with pytest.raises(LimitError, match="NEURO_MAX_INFLATE_RATIO"):
        read_npz(bomb)
    monkeypatch.setenv("NEURO_MAX_INFLATE_RATIO", "100000")
    monkeypatch.setenv("NEURO_MAX_ARRAY_BYTES", "1M")
    with pytest.raises(LimitError, match="NEURO_MAX_ARRAY_BYTES"):
        read_npz(bomb)


def test_gzip_bomb_stops_at_the_ratio(tmp_path, monkeypatch):
    src = tmp_path / "x.gz"
    with gzip.open(src, "wb") as f:
        f.write(b"\0" * (8 << 20))
    monkeypatch.setenv("NEURO_MAX_INFLATE_RATIO", "10")
    out = io.BytesIO()
    with gzip.open(src, "rb") as f, pytest.raises(LimitError, match="inflates to more than"):
        bounded_copy(f, out, src.stat().st_size, str(src))
    assert out.tell() <= 1 << 20  # stopped at the first MiB over the limit


def test_json_limits(tmp_path, monkeypatch):
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(LimitError, match="nested"):
        parse_json(deep, "deep.json")
    with pytest.raises(LimitError, match="nested more than 64"):
        parse_json("[" * 65 + "]" * 65, "d.json")
    assert parse_json("[" * 64 + "]" * 64, "d.json")
    with pytest.raises(ReadError, match="not valid JSON"):
        parse_json("{", "x.json")
    p = tmp_path / "big.json"
    p.write_text(json.dumps(list(range(1000))))
    monkeypatch.setenv("NEURO_MAX_JSON_BYTES", "100")
    with pytest.raises(LimitError, match="NEURO_MAX_JSON_BYTES"):
        read_json(p)
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe")
    monkeypatch.delenv("NEURO_MAX_JSON_BYTES")
    with pytest.raises(ReadError, match="not UTF-8"):
        read_json(tmp_path / "bin.json")


def test_only_regular_files_are_listed(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x")
    os.mkfifo(tmp_path / "fifo.bin")  # opening it would block forever
    (tmp_path / "dir.bin").mkdir()
    os.symlink(tmp_path / "a.bin", tmp_path / "link.bin")
    assert [p.name for p in regular_files(tmp_path, "*.bin")] == ["a.bin", "link.bin"]
    os.symlink(tmp_path / "loop.bin", tmp_path / "loop.bin")
    with pytest.raises(ReadError, match="loop.bin: a broken symlink or a symlink loop"):
        regular_files(tmp_path, "*.bin")


# ------------------------------------------------------------------------- property-based
_SEED_NPZ = npz_bytes(spikes=np.eye(4, dtype=np.uint8), labels=np.arange(3))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(
    st.binary(max_size=400),
    st.tuples(st.integers(0, len(_SEED_NPZ) - 1), st.integers(0, 255)).map(
        lambda iv: _SEED_NPZ[:iv[0]] + bytes([iv[1]]) + _SEED_NPZ[iv[0] + 1:]),
    st.integers(0, len(_SEED_NPZ)).map(lambda n: _SEED_NPZ[:n]),
))
def test_read_npz_raises_only_documented_errors(tmp_path, data):
    p = tmp_path / "fuzz.npz"
    p.write_bytes(data)
    try:
        read_npz(p)
    except ERRORS:
        pass


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_parse_json_raises_only_documented_errors(text):
    try:
        parse_json(text, "fuzz.json")
    except ERRORS:
        pass
