"""Errors about a media file's content, always naming the file."""
from __future__ import annotations

from pathlib import Path

from ...runtime.errors import UserError


class MediaError(UserError):
    """A media file that cannot be decoded as asked."""


def fail(path: Path, problem: str) -> MediaError:
    return MediaError(f"media file '{path}': {problem}")


def check_file(path: Path) -> None:
    if not path.exists():
        raise fail(path, "does not exist")
    if not path.is_file():
        raise fail(path, "is not a file")
    try:
        size = path.stat().st_size
        with path.open("rb"):
            pass
    except OSError as exc:
        raise fail(path, f"cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise fail(path, "is empty (0 bytes)")
