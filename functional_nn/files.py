"""Reading a file the user names, as hostile input: only a regular file, only up to a size limit.

The checkpoint loader (:mod:`functional_nn.serialization`) and the CSV reader
(:mod:`functional_nn.csv_data`) read through :func:`read_regular_file`; each turns
:class:`FileRefused` into its own error.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

__all__ = [
    "FileRefused",
    "check_max_bytes",
    "describe_mode",
    "no_duplicate_keys",
    "open_regular",
    "read_regular_file",
    "reason",
    "short",
]

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOCTTY", 0)
_NO_WAIT = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO must not wait for a writer


class FileRefused(ValueError):
    """A file was not read: it is not a regular file, it is over the size limit, or the
    system refused; the message names the file and says which."""


def reason(error: OSError) -> str:
    """The system's words for ``error`` (its ``strerror``, else its text, else its type)."""
    return error.strerror or str(error) or type(error).__name__


def describe_mode(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, in words ("a folder", "a FIFO (named pipe)", ...)."""
    kinds = [
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def open_regular(path: str, follow: bool = True) -> tuple[int, os.stat_result]:
    """A descriptor open for reading on the regular file at ``path``, and its ``fstat``.

    Anything else (a folder, a FIFO, a device, a socket) is refused before it is
    opened, and again after, in case it was swapped in between. Raises ``OSError``
    for what the system refuses and :class:`FileRefused` ("it is a FIFO, ...")
    for what is not a file.
    """
    before = os.stat(path) if follow else os.lstat(path)
    if not stat.S_ISREG(before.st_mode):
        raise FileRefused(f"it is {describe_mode(before.st_mode)}, not a regular file")
    nofollow = 0 if follow else getattr(os, "O_NOFOLLOW", 0)
    handle = os.open(path, _READ_FLAGS | _NO_WAIT | nofollow)
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(f"it is {describe_mode(info.st_mode)}, not a regular file")
    except BaseException:
        os.close(handle)
        raise
    return handle, info


def read_regular_file(where: str, max_bytes: int) -> bytes:
    """The whole regular file at ``where``, if it holds at most ``max_bytes`` bytes.

    The size is checked before reading, and the read stops one byte past the limit
    in case the file grows (or, like those of ``/proc``, reports no size). Every
    refusal is a :class:`FileRefused` naming ``where``.
    """
    try:
        handle, info = open_regular(where)
    except FileRefused as error:
        raise FileRefused(f"cannot read {where}: {error}") from error
    except OSError as error:
        raise FileRefused(f"cannot read {where}: {reason(error)}") from error
    try:
        if info.st_size > max_bytes:
            raise FileRefused(
                f"{where} is {info.st_size} bytes, over the limit of {max_bytes} bytes "
                "(pass a larger max_bytes to allow it)"
            )
        chunks: list[bytes] = []
        left = max_bytes + 1
        wanted = info.st_size + 1
        while left > 0:
            chunk = os.read(handle, min(left, max(wanted, 1 << 16)))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
            wanted = 1 << 16
    except OSError as error:
        raise FileRefused(f"cannot read {where}: {reason(error)}") from error
    finally:
        os.close(handle)
    if left <= 0:
        raise FileRefused(
            f"{where} holds more than {max_bytes} bytes, over the limit (pass a larger max_bytes to allow it)"
        )
    return b"".join(chunks)


def check_max_bytes(max_bytes: object) -> int:
    """``max_bytes`` if it is an int >= 0 (a size limit); a ValueError otherwise."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValueError(f"max_bytes must be an int >= 0, got {short(max_bytes)}")
    return max_bytes


def short(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut short: a hostile file can hold enormous values."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # a huge int's repr is refused; deep nesting
        return f"a value of type {type(value).__name__}"
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def no_duplicate_keys(
    refuse: Callable[[str], Exception],
) -> Callable[[list[tuple[str, object]]], dict[str, object]]:
    """A ``json.loads`` ``object_pairs_hook`` refusing a key given twice in one object (a file
    could then show a reader one value and a loader the other): ``refuse(key)`` is raised."""

    def hook(pairs: list[tuple[str, object]]) -> dict[str, object]:
        out = dict(pairs)
        if len(out) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    raise refuse(short(key))
                seen.add(key)
        return out

    return hook
