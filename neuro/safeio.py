"""Reading untrusted container files: JSON text, ``.npz`` archives, folders of data files.

Every reader of neuro that opens a file a user can hand it goes through these functions, so a
corrupt, truncated, hostile or oversized file gives one :class:`ReadError` (a ``ValueError``:
the CLI prints one line and exits 2) naming the file and the problem, never a traceback from
``zipfile``/``zlib``/``json`` and never an allocation larger than the ``NEURO_MAX_*`` limits
(:mod:`neuro.limits`):

* :func:`read_json`: size limit before reading, nesting-depth limit, UTF-8, a clear message.
* :func:`read_npz`: zip structure, compression method, encryption flag, each member's declared
  uncompressed size and inflation ratio, and each ``.npy`` header's shape and dtype (no object
  arrays, so no pickle) are checked before any array is allocated.
* :func:`read_hdf5_tree`, :func:`check_hdf5_dataset`: HDF5 groups with the depth limit and
  each dataset's declared (lazy) shape checked before it is read; for ragged (variable-length)
  datasets, the declared length of every element too (:func:`hdf5_vlen_lengths`).
* :func:`regular_files`: the regular files of a dataset folder (FIFOs, devices and sockets are
  never opened; a symlink loop is reported).
* :func:`sha256_file`: the digest artifacts record for every file.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .limits import LimitError, check_array_size, limit


class ReadError(ValueError):
    """A file is missing, unreadable, corrupt, or not what it should be."""


# ------------------------------------------------------------------------------------- JSON
def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0, ``[]`` is 1), without recursion."""
    depth, stack = 0, [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
            depth = max(depth, d + 1)
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
            depth = max(depth, d + 1)
    return depth


def check_depth(where: str, value: Any) -> Any:
    """Raise :class:`LimitError` when ``value`` nests deeper than ``NEURO_MAX_JSON_DEPTH``."""
    top = limit("NEURO_MAX_JSON_DEPTH")
    if json_depth(value) > top:
        raise LimitError(f"{where}: nested more than {top} levels deep (raise "
                         "NEURO_MAX_JSON_DEPTH to allow it)")
    return value


def parse_json(text: str | bytes, where: str) -> Any:
    """Parse JSON ``text`` (from ``where``, named in errors) with the size and depth limits."""
    top = limit("NEURO_MAX_JSON_BYTES")
    if len(text) > top:
        raise LimitError(f"{where}: {len(text)} bytes of JSON, over the limit of {top} (raise "
                         "NEURO_MAX_JSON_BYTES to allow it)")
    try:
        value = json.loads(text)
    except RecursionError:
        raise LimitError(f"{where}: JSON nested too deeply to read (limit "
                         f"{limit('NEURO_MAX_JSON_DEPTH')} levels)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReadError(f"{where}: not valid JSON ({exc})") from None
    return check_depth(where, value)


def read_text(path: str | Path, *, max_bytes: int | None = None) -> str:
    """A regular file's UTF-8 text, refused beyond ``max_bytes`` (default
    ``NEURO_MAX_JSON_BYTES``) before it is read."""
    p = Path(path)
    top = limit("NEURO_MAX_JSON_BYTES") if max_bytes is None else max_bytes
    try:
        st = os.stat(p)
        if not _is_regular(st.st_mode):
            raise ReadError(f"{p}: not a regular file")
        if st.st_size > top:
            raise LimitError(f"{p}: {st.st_size} bytes, over the limit of {top} for a text file "
                             "(raise NEURO_MAX_JSON_BYTES to allow it)")
        with open(p, "rb") as f:
            data = f.read(top + 1)
    except FileNotFoundError:
        raise ReadError(f"{p}: no such file") from None
    except OSError as exc:
        raise ReadError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if len(data) > top:
        raise LimitError(f"{p}: over the limit of {top} bytes for a text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReadError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def read_json(path: str | Path) -> Any:
    """The parsed JSON of file ``path`` (size and depth limits; :class:`ReadError` otherwise)."""
    return parse_json(read_text(path), str(path))


# -------------------------------------------------------------------------------------- npz
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_CORRUPT = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
            NotImplementedError, RuntimeError, OverflowError, UnicodeDecodeError)


def _npy_header(fp: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fp)
    if version in ((2, 0), (3, 0)):
        return np.lib.format.read_array_header_2_0(fp)
    raise ValueError(f"unsupported .npy format version {version}")


def read_npz(path: str | Path, keys: Iterable[str] | None = None, *,
             required: bool = True) -> dict[str, np.ndarray]:
    """The arrays of ``.npz`` file ``path`` (all, or only ``keys``), checked before allocation.

    ``required``: a missing key is an error (else it is left out of the result). Raises
    :class:`ReadError` (corrupt, truncated, encrypted, unknown compression, object arrays) or
    :class:`~neuro.limits.LimitError` (declared sizes over the ``NEURO_MAX_*`` limits).
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise ReadError(f"{p}: no such file") from None
    except OSError as exc:
        raise ReadError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if not _is_regular(st.st_mode):
        raise ReadError(f"{p}: not a regular file")
    out: dict[str, np.ndarray] = {}
    member = "?"
    try:
        with zipfile.ZipFile(p) as zf:
            infos = {i.filename.removesuffix(".npy"): i for i in zf.infolist()}
            wanted = list(infos) if keys is None else list(keys)
            missing = [k for k in wanted if k not in infos]
            if missing and required:
                raise ReadError(f"{p}: no array {missing[0]!r} (found {sorted(infos)})")
            ratio = limit("NEURO_MAX_INFLATE_RATIO")
            for key in (k for k in wanted if k in infos):
                info, member = infos[key], key
                if info.flag_bits & 0x1:
                    raise ReadError(f"{p}: member {key!r} is encrypted")
                if info.compress_type not in _METHODS:
                    raise ReadError(f"{p}: member {key!r} uses compression method "
                                    f"{info.compress_type} (only stored and deflate are read)")
                if info.file_size > limit("NEURO_MAX_ARRAY_BYTES") + 4096:
                    raise LimitError(f"{p}: member {key!r} declares {info.file_size} bytes, over "
                                     f"the limit of {limit('NEURO_MAX_ARRAY_BYTES')} (raise "
                                     "NEURO_MAX_ARRAY_BYTES to allow it)")
                if info.file_size > (1 << 20) and info.file_size > ratio * max(info.compress_size, 1):
                    raise LimitError(f"{p}: member {key!r} inflates {info.compress_size} bytes to "
                                     f"{info.file_size} (ratio over {ratio}; raise "
                                     "NEURO_MAX_INFLATE_RATIO to allow it)")
                with zf.open(info) as fp:
                    shape, fortran, dtype = _npy_header(fp)
                    if dtype.hasobject:
                        raise ReadError(f"{p}: array {key!r} has object dtype (refused: reading "
                                        "it would unpickle code)")
                    check_array_size(f"{p}: array {key!r}", shape, dtype.itemsize)
                    need = fp.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                    if need > info.file_size:
                        raise ReadError(f"{p}: array {key!r} is truncated (header declares "
                                        f"shape {shape}, {dtype})")
                    out[key] = _read_body(fp, shape, fortran, dtype)
                    if fp.read(1 << 16):  # reading to the end also checks the CRC
                        raise ReadError(f"{p}: array {key!r} has data after its declared shape")
    except (LimitError, ReadError):
        raise
    except _CORRUPT as exc:
        what = f"member {member!r}: " if member != "?" else ""
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReadError(f"{p}: not a readable .npz file ({what}{reason})") from None
    return out


def _read_body(fp: Any, shape: tuple[int, ...], fortran: bool, dtype: np.dtype) -> np.ndarray:
    count = int(np.prod(shape, dtype=np.int64))
    data = fp.read(count * dtype.itemsize) if count else b""
    if len(data) != count * dtype.itemsize:
        raise EOFError("array data ends early")
    arr = np.frombuffer(data, dtype=dtype, count=count).copy()
    if fortran:
        return arr.reshape(shape[::-1]).transpose()
    return arr.reshape(shape)


# -------------------------------------------------------------------------------------- HDF5
@contextlib.contextmanager
def hdf5_file(path: str | Path, where: str | None = None, *,
              kind: str = "readable HDF5 file") -> Iterator[Any]:
    """Open an HDF5 file for reading; the errors h5py raises for a corrupt file, at open time
    or while reading inside the block (``OSError``, ``RuntimeError``, ``KeyError``), become one
    :class:`ReadError` naming the file. ``ValueError`` from the block passes unchanged."""
    import h5py

    name = where or str(path)
    try:
        f = h5py.File(path, "r")
    except (OSError, RuntimeError, ValueError) as exc:
        raise ReadError(f"{name}: not a {kind}, truncated or corrupt "
                        f"({_first_line(exc)})") from None
    try:
        with f:
            yield f
    except (OSError, RuntimeError, KeyError) as exc:
        raise ReadError(f"{name}: corrupt {kind.removeprefix('readable ')} "
                        f"({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_hdf5_dataset(ds: Any, where: str) -> None:
    """Raise :class:`~neuro.limits.LimitError` when an HDF5 dataset's declared (lazy) shape is
    over the ``NEURO_MAX_*`` limits, before any of it is read.

    A variable-length dataset (ragged arrays such as SHD's ``spikes/times``, or strings) also
    has the total of its elements' declared lengths checked, read from the dataset's raw
    storage (:func:`hdf5_vlen_lengths`) without reading the contents: HDF5 allocates each
    element at the length the file declares, so a small file could otherwise ask for
    gigabytes. Variable-length fields inside a compound type are refused."""
    import h5py

    shape = tuple(int(d) for d in (ds.shape or ()))
    check_array_size(f"{where}: dataset {ds.name!r}", shape, max(int(ds.dtype.itemsize), 1))
    base = h5py.check_vlen_dtype(ds.dtype)
    if base is None:
        if ds.dtype.hasobject:
            raise ReadError(f"{where}: dataset {ds.name!r} has type {ds.dtype} (references or "
                            "variable-length fields inside a compound type are not read)")
        return
    itemsize = 1 if base in (str, bytes) else max(int(np.dtype(base).itemsize), 1)
    total = count = 0
    for block in _vlen_length_blocks(ds, where):  # a block at a time: bounded memory
        total += int(block.sum())
        count += block.size
        check_array_size(f"{where}: dataset {ds.name!r} (the contents of its variable-length "
                         f"elements, {count} read so far)", (total,), itemsize)


def hdf5_vlen_lengths(ds: Any, where: str) -> np.ndarray:
    """The declared length of every element of variable-length dataset ``ds`` (int64, in
    storage order; chunked storage: whole chunks, so padding past the extent counts as
    elements too), read from its raw storage and nothing else (:func:`_vlen_length_blocks`)."""
    blocks = list(_vlen_length_blocks(ds, where))
    return np.concatenate(blocks) if blocks else np.zeros(0, np.int64)


_BLOCK_RECORDS = 1 << 20  # records read at a time: 16 MiB with 8-byte addresses


def _vlen_length_blocks(ds: Any, where: str) -> Iterator[np.ndarray]:
    """The declared lengths of ``ds``'s elements, a block at a time (bounded memory).

    HDF5 stores each variable-length element as a 4-byte little-endian length and a
    global-heap ID (an address and a 4-byte index); only these records are read: contiguous
    storage directly from the file, chunked storage chunk by chunk (deflate and shuffle filters
    undone, the output bounded by the chunk's declared size). A dataset whose records neuro
    cannot reach (compact or virtual layout, external files, other filters) raises
    :class:`ReadError`."""
    from h5py import h5d, h5z

    name = f"{where}: dataset {ds.name!r}"
    n = 0 if ds.shape is None else int(np.prod(ds.shape, dtype=np.int64))
    record = 4 + int(ds.file.id.get_create_plist().get_sizes()[0]) + 4
    rec_dtype = np.dtype([("length", "<u4"), ("id", f"V{record - 4}")])

    def lengths(raw: bytes) -> np.ndarray:
        return np.frombuffer(raw, rec_dtype, count=len(raw) // record)["length"].astype(np.int64)

    dcpl = ds.id.get_create_plist()
    if dcpl.get_external_count():
        raise ReadError(f"{name}: stored in external files (not read)")
    layout = dcpl.get_layout()
    if layout == h5d.CONTIGUOUS:
        offset = ds.id.get_offset()
        if offset is None or n == 0:  # storage never allocated: every element is empty
            return
        for start in range(0, n, _BLOCK_RECORDS):
            count = min(_BLOCK_RECORDS, n - start)
            yield lengths(_read_at(ds.file.filename, int(offset) + start * record,
                                   count * record, name))
    elif layout == h5d.CHUNKED:
        filters = [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]
        unknown = [f for f in filters if f not in (h5z.FILTER_DEFLATE, h5z.FILTER_SHUFFLE)]
        if unknown:
            raise ReadError(f"{name}: a variable-length dataset with HDF5 filter {unknown[0]} "
                            "(neuro checks the declared sizes of deflate/shuffle chunks only)")
        chunk = tuple(dcpl.get_chunk())
        check_array_size(f"{name} (one chunk)", chunk, record)
        size = int(np.prod(chunk, dtype=np.int64)) * record
        for i in range(ds.id.get_num_chunks()):
            mask, data = ds.id.read_direct_chunk(ds.id.get_chunk_info(i).chunk_offset)
            for bit in reversed(range(len(filters))):  # undo the pipeline, last filter first
                if mask & (1 << bit):
                    continue
                if filters[bit] == h5z.FILTER_DEFLATE:
                    try:
                        data = zlib.decompressobj().decompress(data, size + 1)
                    except zlib.error as exc:
                        raise ReadError(f"{name}: corrupt chunk ({exc})") from None
                elif len(data) == size:  # shuffle: byte k of every record was stored together
                    data = np.frombuffer(data, np.uint8).reshape(record, -1).T.tobytes()
            if len(data) != size:
                raise ReadError(f"{name}: chunk {i} holds {len(data)} bytes, its declared size "
                                f"is {size} (corrupt)")
            yield lengths(data)
    else:
        kind = {h5d.COMPACT: "compact"}.get(layout, "virtual")
        raise ReadError(f"{name}: a variable-length dataset in {kind} layout (neuro reads "
                        "variable-length data from contiguous or chunked storage only)")


def _read_at(path: str, offset: int, nbytes: int, name: str) -> bytes:
    """``nbytes`` bytes of file ``path`` from ``offset`` (:class:`ReadError` if it ends early)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(nbytes)
    except OSError as exc:
        raise ReadError(f"{name}: cannot read its storage ({exc.strerror or exc})") from None
    if len(data) != nbytes:
        raise ReadError(f"{name}: storage ends early (truncated file)")
    return data


def read_hdf5_tree(group: Any, where: str) -> dict[str, Any]:
    """An HDF5 group as nested dicts (what ``nir.serialization.hdf2dict`` returns: bytes keys
    and scalars decoded to ``str``), read iteratively with the ``NEURO_MAX_JSON_DEPTH`` nesting
    limit and every dataset's declared size checked before it is read."""
    import h5py

    def text(v: Any) -> Any:
        return v.decode("utf8") if isinstance(v, bytes) else v

    top = limit("NEURO_MAX_JSON_DEPTH")
    root: dict[str, Any] = {}
    stack = [(group, root, 1)]
    while stack:
        g, into, depth = stack.pop()
        if depth > top:
            raise LimitError(f"{where}: groups nested more than {top} levels deep (raise "
                             "NEURO_MAX_JSON_DEPTH to allow it)")
        for key, item in g.items():
            key = text(key)
            if isinstance(item, h5py.Group):
                into[key] = {}
                stack.append((item, into[key], depth + 1))
            elif isinstance(item, h5py.Dataset):
                check_hdf5_dataset(item, where)
                into[key] = text(item[()])
    return root


# ------------------------------------------------------------------------------ decompression
def bounded_copy(src: Any, dst: Any, compressed_size: int, where: str) -> int:
    """Copy a decompressing stream ``src`` into ``dst``, stopping with
    :class:`~neuro.limits.LimitError` once the output exceeds ``NEURO_MAX_INFLATE_RATIO`` times
    ``compressed_size`` (beyond the first MiB): a gzip bomb never fills the disk or memory.
    Returns the bytes written."""
    top = max(limit("NEURO_MAX_INFLATE_RATIO") * max(int(compressed_size), 1), 1 << 20)
    written = 0
    while True:
        block = src.read(1 << 20)
        if not block:
            return written
        written += len(block)
        if written > top:
            raise LimitError(f"{where}: inflates to more than {top} bytes from {compressed_size} "
                             f"(ratio over {limit('NEURO_MAX_INFLATE_RATIO')}; raise "
                             "NEURO_MAX_INFLATE_RATIO to allow it)")
        dst.write(block)


# ----------------------------------------------------------------------------------- folders
def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def regular_files(folder: str | Path, pattern: str = "*", *, recursive: bool = False) -> list[Path]:
    """The regular files in ``folder`` matching ``pattern``, sorted. Symlinks to regular files
    count; FIFOs, sockets, devices and folders are skipped (never opened, so a FIFO cannot
    hang a reader); a symlink loop or a broken symlink raises :class:`ReadError`."""
    root = Path(folder)
    found = []
    try:
        candidates = root.rglob(pattern) if recursive else root.glob(pattern)
        for p in candidates:
            try:
                st = os.stat(p)  # follows symlinks
            except OSError as exc:
                if p.is_symlink():
                    raise ReadError(f"{p}: a broken symlink or a symlink loop "
                                    f"({exc.strerror or exc})") from None
                raise ReadError(f"{p}: cannot read ({exc.strerror or exc})") from None
            if _is_regular(st.st_mode):
                found.append(p)
    except OSError as exc:
        raise ReadError(f"{root}: cannot list ({exc.strerror or exc})") from None
    return sorted(found)


def sha256_file(path: str | Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


__all__ = ["ReadError", "bounded_copy", "check_depth", "check_hdf5_dataset", "hdf5_file",
           "hdf5_vlen_lengths",
           "read_hdf5_tree", "json_depth", "parse_json", "read_json", "read_npz",
           "read_text", "regular_files", "sha256_file"]
