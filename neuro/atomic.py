"""Writing files and directories so that a failure leaves nothing partial behind.

* :func:`atomic_write`: ``write(tmp_path)`` into a temporary file next to ``path``, then rename.
* :func:`atomic_dir`: fill a temporary directory next to ``path`` (mode 0o755, as a plain
  ``mkdir`` would give, not ``mkdtemp``'s private 0o700), then rename it into place; an existing
  ``path`` is replaced only once the new one is complete, and only when ``replace`` allows it.

Every writer of neuro (checkpoints, graphs, artifacts, NIR files, reports, datasets' caches)
goes through these two.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, write: Callable[[str], Any]) -> Path:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` to ``path`` (same directory)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


@contextlib.contextmanager
def atomic_dir(path: str | Path, *,
               replace: Callable[[Path], bool] | bool = True) -> Iterator[Path]:
    """Yield a fresh temporary directory; when the block succeeds it becomes ``path``.

    ``replace``: whether an existing ``path`` may be replaced (a bool, or a predicate on the
    existing directory that raises or returns False to refuse). A refused or failed write
    removes the temporary directory and leaves ``path`` as it was.
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"{path}: exists and is not a directory")
        allowed = replace(path) if callable(replace) else replace
        if not allowed:
            raise ValueError(f"{path}: exists (refusing to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


__all__ = ["atomic_dir", "atomic_write"]
