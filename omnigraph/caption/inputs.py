"""What a captioning job reads: files, folders (recursed; media found by content), globs and manifests, each
becoming an `Item` with a deterministic id (the manifest's, or a hash of the resolved path, size and mtime)."""
from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..runtime.errors import UserError

MANIFEST_SUFFIXES = (".jsonl", ".csv", ".parquet")
MEDIA_SUFFIXES = frozenset(
    ".wav .flac .mp3 .ogg .oga .opus .m4a .aac .ac3 .wv .wma .aif .aiff .amr .mka .caf .au "
    ".mp4 .m4v .mov .mkv .webm .avi .flv .ts .mts .mpg .mpeg .3gp .wmv .ogv".split())


@dataclass(frozen=True)
class Item:
    """One input file: `id` names its record; `prompt` (optional) is its instruction; `source` says where it was
    listed (a manifest's file:line), for messages."""

    id: str
    path: str
    prompt: str | None = None
    source: str = ""


def list_items(inputs: Iterable[str], skip: Iterable[Path] = ()) -> list[Item]:
    """Every item named by `inputs`, in order, each id once. A path that does not exist, a glob matching nothing,
    or one id given for two different files is a UserError; `skip` (the job's own output files) is left out."""
    from .manifest import read_manifest

    skipped = {p.resolve() for p in skip}
    items: dict[str, Item] = {}
    for given in inputs:
        for item in _items_of(given, read_manifest, skipped):
            held = items.get(item.id)
            if held is not None and Path(held.path).resolve() != Path(item.path).resolve():
                raise UserError(f"{item.source or given}: id '{item.id}' is also given to '{held.path}' "
                                f"({held.source or 'listed earlier'}); give each file its own id")
            items.setdefault(item.id, item)
    return list(items.values())


def _items_of(given: str, read_manifest, skipped: set[Path]) -> Iterable[Item]:
    path = Path(given).expanduser()
    if not path.exists() and glob.has_magic(given):
        matches = sorted(glob.glob(os.path.expanduser(given), recursive=True))
        if not matches:
            raise UserError(f"input '{given}': the pattern matches no file; check it (quote it so the shell "
                            f"does not expand it)")
        for match in matches:
            yield from _items_of_path(Path(match), read_manifest, skipped, in_glob=True)
        return
    if not path.exists():
        raise UserError(f"input '{given}' does not exist; give audio or video files, folders, globs or a manifest "
                        f"({', '.join(MANIFEST_SUFFIXES)})")
    yield from _items_of_path(path, read_manifest, skipped, in_glob=False)


def _items_of_path(path: Path, read_manifest, skipped: set[Path], in_glob: bool) -> Iterable[Item]:
    if path.is_dir():
        yield from (file_item(p) for p in _media_in(path, skipped))
    elif path.resolve() in skipped:
        return
    elif path.suffix.lower() in MANIFEST_SUFFIXES:
        yield from read_manifest(path)
    elif not in_glob or is_media(path):
        yield file_item(path)  # a file named explicitly is captioned or reported, whatever it holds


def _media_in(folder: Path, skipped: set[Path]) -> Iterable[Path]:
    """Files under `folder` (recursed, sorted, hidden ones left out) that hold audio or video."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if not name.startswith(".") and path.resolve() not in skipped and is_media(path):
                yield path


def is_media(path: Path) -> bool:
    """Audio or video by what the file holds: a media extension (a corrupt one is still reported), else FFmpeg
    finds an audio or video stream in it that is not a still image."""
    if path.suffix.lower() in MEDIA_SUFFIXES:
        return True
    import av

    try:
        with av.open(str(path), metadata_errors="replace") as container:
            names = container.format.name.split(",")
            still = any(n == "image2" or n.endswith("_pipe") or n == "tty" for n in names)
            return not still and bool(container.streams.audio or container.streams.video)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        return False


def file_item(path: Path, id: str | None = None, prompt: str | None = None, source: str = "") -> Item:
    """An item for `path`; without an id, a hash of its resolved path, size and mtime (a file changed since
    gets a new id, and is captioned again on --resume)."""
    if id is None:
        resolved = path.resolve()
        try:
            stat = resolved.stat()
            key = f"{resolved}\0{stat.st_size}\0{stat.st_mtime_ns}"
        except OSError:
            key = str(resolved)  # unreadable: still one stable id, and the job records why it failed
        id = hashlib.sha1(key.encode()).hexdigest()[:16]
    return Item(id, str(path), prompt, source)
