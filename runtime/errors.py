"""Errors users can act on: where the problem is, what it is, how to fix it."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Location:
    """A place in a source file (1-based line and column)."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}" if self.line else self.file


@dataclass(frozen=True)
class GraphIssue:
    """One problem found in a graph file. `code` is a stable kebab-case name tests can match."""

    code: str
    message: str
    where: Location
    node: str | None = None
    port: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        subject = ""
        if self.node is not None:
            subject = f"[{self.node}.{self.port}] " if self.port else f"[{self.node}] "
        text = f"{self.where}: {self.code}: {subject}{self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class UserError(Exception):
    """A problem in what the user gave us (flags, files, inputs). The CLI exits 2 and prints no traceback."""


class CheckpointError(UserError):
    """A checkpoint that is missing, unreadable, or does not match what a node expects."""


class MissingCheckpoint(CheckpointError):
    """A node that loads weights or tokenizer files (`Node.needs_checkpoint`) was given no checkpoint."""

    def __init__(self, node: str, kind: str, where: Location | None = None):
        at = f"{where}: " if where is not None else ""
        super().__init__(f"{at}node '{node}' ({kind}) needs a checkpoint: pass --checkpoint DIR (a Hugging Face "
                         f"checkpoint folder)")


class GraphValidationError(UserError):
    """Every problem found in a graph, reported together."""

    def __init__(self, issues: Iterable[GraphIssue]):
        self.issues = sorted(issues, key=lambda i: (i.where.file, i.where.line, i.where.col, i.code))
        count = len(self.issues)
        lines = [f"{count} problem{'s' if count != 1 else ''} in graph:"] + [f"  {i}" for i in self.issues]
        super().__init__("\n".join(lines))


class NodeFailed(Exception):
    """A node raised during a run; the original exception is `__cause__` and `.error`."""

    def __init__(self, node: str, kind: str, error: BaseException, *, remote_traceback: str | None = None):
        self.node, self.kind, self.error = node, kind, error
        self.remote_traceback = remote_traceback  # the traceback text, when the node ran in another process
        super().__init__(f"node '{node}' ({kind}) failed: {type(error).__name__}: {error}")


class RunCancelled(Exception):
    """The caller cancelled the run before it finished."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean' hint for a near-miss name, or a list of valid names when nothing is close."""
    options = sorted(set(candidates))
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    if not options:
        return None
    shown = ", ".join(options[:12]) + (", ..." if len(options) > 12 else "")
    return f"valid names: {shown}"
