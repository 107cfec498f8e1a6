"""Exception types with one-line, user-facing messages.

The CLI turns any :class:`DpdeblurError` into ``error: <message>`` and exit code 1
(2 for :class:`UsageError`), without a traceback.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Callable, Iterable, Iterator


def few(items: Iterable[object], n: int = 8) -> str:
    """``"a, b, c (+7 more)"``: the first ``n`` items of a list for a one-line message."""
    xs = [str(x) for x in items]
    return ", ".join(xs[:n]) + (f" (+{len(xs) - n} more)" if len(xs) > n else "")


_RENDER: ContextVar[Callable[["DpdeblurError"], str] | None] = ContextVar("dpdeblur_render", default=None)


def message(e: BaseException) -> str:
    """The text of an error as the running front end shows it: the CLI renders the settings a
    :class:`DpdeblurError` names as its flags (see :func:`rendering`); otherwise ``str(e)``."""
    render = _RENDER.get()
    return render(e) if render is not None and isinstance(e, DpdeblurError) else str(e)


@contextlib.contextmanager
def rendering(render: Callable[["DpdeblurError"], str]) -> Iterator[None]:
    """Within the block, :func:`message` (used by batches for their per-item errors) shows errors
    through ``render``."""
    token = _RENDER.set(render)
    try:
        yield
    finally:
        _RENDER.reset(token)


class DpdeblurError(Exception):
    """Base class: the message names the file and the fix.

    ``settings``: the library names of the settings the message names (``"tile"``, ``"batch_size"``),
    each followed by a space in the message. The library never spells a command-line flag; the
    CLI replaces each name with its flag (``--tile``, ``--batch-size``) when it prints the error.
    """

    def __init__(self, message: str = "", *, settings: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.settings = tuple(settings)


class UsageError(DpdeblurError):
    """Wrong or inconsistent command-line / API arguments (exit code 2)."""


class WeightsError(DpdeblurError):
    """A weights file is missing, unreadable, mismatched or fails its checksum."""


class WeightsMismatchError(UsageError, WeightsError):
    """Readable weights of another model (or size) than the one requested: a usage error
    (exit code 2) whatever the file format, still caught as a :class:`WeightsError`."""


class InputError(DpdeblurError):
    """An input file is missing, unreadable, corrupt or of the wrong kind."""


class OutputError(DpdeblurError):
    """An output cannot be written where it should go: a folder in the way, a path under a file,
    no permission, a full disk."""


class DataError(DpdeblurError):
    """A data set is missing folders, unpaired or does not fit the model."""


class UnknownModelError(UsageError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelConfigError(UsageError, ValueError):
    """A ``--model-config`` key the builder does not have or a value it refuses."""
