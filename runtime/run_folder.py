"""A run's output folder, written as a set: files are staged in a hidden folder inside it and moved in place at
the end, `result.json` last, under a lock that keeps a second run out while one writes.

The folder's run files are the set a run writes; a manifest (`.omnigraph-files.json`) names them, so the next
run replaces the whole set: files of an earlier run that this run does not produce are removed. Other files in
the folder are left alone. A run that ends before its commit (interrupted, killed, failed writing) leaves the
earlier set as it was; a commit cut short leaves no `result.json`, never one that disagrees with its files.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from .errors import UserError
from .writable import check_writable_file

RESULT_FILE = "result.json"
LOCK_FILE = ".omnigraph.lock"
MANIFEST_FILE = ".omnigraph-files.json"
STAGING_PREFIX = ".omnigraph-partial-"
DEFAULT_ROOT = Path("out")


def default_out_dir(graph_name: str, root: Path = DEFAULT_ROOT) -> Path:
    """`out/<graph name>`, refused unless it resolves to a folder inside `out/`."""
    base = root.resolve()
    if (base / graph_name).resolve().parent != base:
        raise UserError(f"graph name '{graph_name}' does not name a folder inside '{root}/' (the default output "
                        f"folder); give the graph a plain name, or choose a folder with --out DIR")
    return root / graph_name


class RunFolder:
    """`with RunFolder(path) as folder:` locks and prepares the folder; write into `folder.staging` (and into
    paths from `folder.stage`), then `folder.commit()`. Leaving the block without a commit discards the run."""

    def __init__(self, path: Path):
        self.path = path
        self.staging = path / STAGING_PREFIX  # set by __enter__
        self._moves: list[tuple[Path, Path]] = []  # staged file -> its place outside the folder
        self._lock_fd: int | None = None
        self._created = False  # this run made the folder: it goes again if the run ends without a commit
        self._committed = False

    def __enter__(self) -> RunFolder:
        try:
            self._created = not self.path.exists()
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserError(f"cannot create output folder '{self.path}': {exc.strerror or exc}; "
                            f"choose a writable folder with --out") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._lock_fd, 32, 0).decode(errors="replace").strip() or "?"
            self._unlock()
            raise UserError(f"output folder '{self.path}' is in use by another omnigraph run (pid {holder}); "
                            f"wait for it to end, or choose another folder with --out") from None
        try:
            os.ftruncate(self._lock_fd, 0)
            os.pwrite(self._lock_fd, str(os.getpid()).encode(), 0)
            for stale in self.path.glob(STAGING_PREFIX + "*"):  # left by runs that were killed
                shutil.rmtree(stale, ignore_errors=True)
            self.staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.path))
        except OSError as exc:
            self._unlock()
            raise UserError(f"cannot write into output folder '{self.path}': {exc.strerror or exc}") from None
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        for staged, _ in self._moves:
            staged.unlink(missing_ok=True)
        if self._created and not self._committed:
            (self.path / LOCK_FILE).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # only if empty: nothing of anyone else's is removed
                self.path.rmdir()
        self._unlock()

    def stage(self, final: Path, what: str) -> Path:
        """Where to write a file that should appear at `final` when the run commits (checked writable now); a file
        outside the folder is staged beside its place, on its own file system."""
        if final.resolve().parent == self.path.resolve():
            if final.name in (RESULT_FILE, LOCK_FILE, MANIFEST_FILE):
                raise UserError(f"{what} '{final}' would replace the run's own {final.name}; choose another name")
            return self.staging / final.name
        check_writable_file(final, what)
        staged = final.parent / f".{final.name}.{os.getpid()}.partial"
        self._moves.append((staged, final))
        return staged

    def commit(self) -> None:
        """Replace the folder's earlier run files by the staged ones, `result.json` last."""
        new = {p.name for p in self.staging.iterdir()} - {RESULT_FILE}
        for name in sorted(new | {RESULT_FILE}):
            if (self.path / name).is_dir():
                raise UserError(f"cannot write '{self.path / name}': a folder is in the way; move it, or choose "
                                f"another folder with --out")
        old = self._manifest()
        self._write_manifest(old | new)  # a commit cut short: the next one still knows every file to replace
        (self.path / RESULT_FILE).unlink(missing_ok=True)
        for name in old - new:
            _remove(self.path / name)
        for name in sorted(new):
            os.replace(self.staging / name, self.path / name)
        for staged, final in self._moves:
            if staged.exists():  # not written when the run failed
                os.replace(staged, final)
        self._moves.clear()
        os.replace(self.staging / RESULT_FILE, self.path / RESULT_FILE)
        self._write_manifest(new)
        self._committed = True

    def _manifest(self) -> set[str]:
        """The earlier run files: the manifest's names, else (a folder written before manifests) result.json's."""
        try:
            names = json.loads((self.path / MANIFEST_FILE).read_text())
        except (OSError, ValueError):
            names = self._files_in_result()
        return {n for n in names if isinstance(n, str) and n == Path(n).name and not n.startswith(".")}

    def _files_in_result(self) -> list[str]:
        try:
            files = json.loads((self.path / RESULT_FILE).read_text()).get("files", {})
            return [Path(f).name for f in files.values() if Path(f).parent.resolve() == self.path.resolve()]
        except (OSError, ValueError, AttributeError, TypeError):
            return []

    def _write_manifest(self, names: set[str]) -> None:
        staged = self.staging / MANIFEST_FILE
        staged.write_text(json.dumps(sorted(names)))
        os.replace(staged, self.path / MANIFEST_FILE)

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the lock (as does the process ending)
            self._lock_fd = None


def _remove(path: Path) -> None:
    """Remove an earlier run's file; a folder put in its place since is the user's, and stays."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)

