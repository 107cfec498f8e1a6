"""Atomic writes: write to a temporary file in the target folder, then rename.

The finished file gets the mode any other program's output would get: the
user's umask for a new file, the existing file's mode when it is replaced
(``mkstemp`` alone would leave every output at 0600).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "new_file_mode", "check_output_folder"]

_NAME_MAX = 255  # bytes in one path component on common file systems


def new_file_mode() -> int:
    """``0o666`` minus the process umask: the mode ``open(path, "w")`` gives a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def check_output_folder(path: str | Path | None) -> None:
    """Usage error when an output folder names an existing file (checked before any work)."""
    if path is not None and Path(path).exists() and not Path(path).is_dir():
        from dpdeblur.errors import UsageError

        raise UsageError(f"out {path}: is a file, not a folder; choose a folder for the outputs", settings=("out",))


def _tmp_prefix(name: str) -> str:
    """``.<name>.`` shortened so that the temporary name fits wherever ``name`` fits."""
    room = _NAME_MAX - len(".") - len(".") - 8 - len(".tmp") - 16  # random part and the suffix
    short = name.encode("utf-8")[: max(1, room)].decode("utf-8", "ignore")
    return f".{short}."


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    On an exception the temporary file is removed and ``path`` is untouched, so a
    crash never leaves a half-written file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix if len(path.suffix) <= 12 else ""
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path.name), suffix=".tmp" + ext, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        try:
            mode = stat.S_IMODE(path.stat().st_mode) if path.is_file() else new_file_mode()
        except OSError:
            mode = new_file_mode()
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
