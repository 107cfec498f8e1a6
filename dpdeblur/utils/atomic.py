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

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "new_file_mode", "check_output_folder",
           "check_creatable", "atomic_group"]

_NAME_MAX = 255  # bytes in one path component on common file systems


def new_file_mode() -> int:
    """``0o666`` minus the process umask: the mode ``open(path, "w")`` gives a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def check_output_folder(path: str | Path | None, setting: str = "out") -> None:
    """Usage error, before any work, when an output folder cannot be: it names an existing file,
    it lies under a file, or the folder it would be created in is not writable. ``setting``:
    the option that gave the path, named in the message."""
    if path is None:
        return
    from dpdeblur.errors import UsageError

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{setting} {path}: is a file, not a folder; choose a folder for the outputs", settings=(setting,))
    if p.is_dir():
        if not os.access(p, os.W_OK | os.X_OK):
            raise UsageError(f"{setting} {path}: is not writable; choose a folder you can write to", settings=(setting,))
        return
    check_creatable(p, setting)


def check_creatable(path: str | Path, setting: str) -> None:
    """Usage error when ``path`` (a file or folder to be written) cannot be made in the nearest
    existing folder above it: that is a file, or it is not writable."""
    from dpdeblur.errors import UsageError

    here = Path(path).absolute().parent
    while not here.exists() and here != here.parent:  # the nearest existing folder it would be made in
        here = here.parent
    if not here.is_dir():
        raise UsageError(f"{setting} {path}: {here} is a file, so nothing can be made under it; choose another place",
                         settings=(setting,))
    if not os.access(here, os.W_OK | os.X_OK):
        raise UsageError(f"{setting} {path}: {here} is not writable; choose a place you can write to", settings=(setting,))


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
    from dpdeblur.errors import OutputError

    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: a folder is in the way of this output file; remove or rename it, or write elsewhere")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{path.parent}: cannot create this output folder ({e.strerror or e}); write elsewhere") from None
    ext = path.suffix if len(path.suffix) <= 12 else ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path.name), suffix=".tmp" + ext, dir=path.parent)
    except OSError as e:
        raise OutputError(f"{path}: cannot write in {path.parent} ({e.strerror or e}); write elsewhere") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        try:
            mode = stat.S_IMODE(path.stat().st_mode) if path.is_file() else new_file_mode()
        except OSError:
            mode = new_file_mode()
        os.chmod(tmp_path, mode)
        try:
            os.replace(tmp_path, path)
        except OSError as e:
            raise OutputError(f"{path}: cannot put the finished file in place ({e.strerror or e})") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_group(paths: dict[str, Path]) -> Iterator[dict[str, Path]]:
    """All of an item's output files, or none: yield a temporary path (same folder, same
    extension) for each of ``paths``; when the block succeeds they are renamed to their final
    names together, on an exception every temporary file is removed and no final file changes.

    Usage::

        with atomic_group({"left": a, "right": b}) as tmp:
            write_image(tmp["left"], ...); write_image(tmp["right"], ...)
    """
    with contextlib.ExitStack() as stack:
        tmp = {k: stack.enter_context(atomic_path(p)) for k, p in paths.items()}
        yield tmp


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
