"""The malformed-graph corpus: every file in tests/fixtures/graphs/bad/ fails exactly as its comments say.

A bad file starts with comment lines:

    # expect: CODE [FILE:]LINE:COL [NODE[.PORT]]   one per issue (FILE is relative to the bad file)
    # hint: TEXT                                  some issue's hint contains TEXT
    # message: TEXT                               some issue's message contains TEXT

Helper files that are not meant to be validated on their own live in bad/parents/ (not globbed).
"""
from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from omnigraph.runtime.errors import GraphIssue, GraphValidationError
from omnigraph.runtime.validate import load_graph

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "tests" / "fixtures" / "graphs" / "bad"
BAD_FILES = sorted(BAD.glob("*.yaml"))

Key = tuple  # (code, file, line, col, node, port)


@dataclass
class Expectations:
    issues: Counter = field(default_factory=Counter)
    hints: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def parse_expectations(path: Path) -> Expectations:
    """The directives in the leading comment lines of `path`."""
    out = Expectations()
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        if not line.startswith("#"):
            break
        directive, _, rest = line[1:].strip().partition(":")
        rest = rest.strip()
        if directive == "expect":
            out.issues[_expected_issue(path, rest)] += 1
        elif directive == "hint":
            out.hints.append(rest)
        elif directive == "message":
            out.messages.append(rest)
    return out


def _expected_issue(path: Path, text: str) -> Key:
    code, where, *subject = text.split()
    *file, line, col = where.split(":")
    file_path = (path.parent / file[0]).resolve() if file else path.resolve()
    node, _, port = subject[0].partition(".") if subject else (None, "", "")
    return code, str(file_path), int(line), int(col), node, port or None


def issue_key(issue: GraphIssue) -> Key:
    w = issue.where
    return issue.code, w.file, w.line, w.col, issue.node, issue.port


def validate_issues(path: Path) -> list[GraphIssue]:
    try:
        graph = load_graph(path)
    except GraphValidationError as exc:
        return exc.issues
    pytest.fail(f"{path.name} validated (nodes {list(graph.nodes)})")


def test_corpus_is_large_enough():
    assert len(BAD_FILES) >= 30
    assert all(parse_expectations(p).issues for p in BAD_FILES), "every bad file declares what it expects"


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_bad_graph_reports_exactly_the_expected_issues(path: Path):
    expected = parse_expectations(path)
    issues = validate_issues(path)
    got = Counter(issue_key(i) for i in issues)
    assert sorted(got.elements(), key=str) == sorted(expected.issues.elements(), key=str), \
        "\n".join(str(i) for i in issues)
    for issue in issues:
        assert issue.message and issue.message.strip()
    for hint in expected.hints:
        assert any(hint in (i.hint or "") for i in issues), f"no issue hints {hint!r}"
    for text in expected.messages:
        assert any(text in i.message for i in issues), f"no issue message contains {text!r}"


def test_corpus_covers_every_documented_code():
    """Every error code that graphs/README.md lists is produced by some bad file."""
    readme = (ROOT / "graphs" / "README.md").read_text()
    documented = set(re.findall(r"`([a-z]+(?:-[a-z]+)+)`", readme.split("Each problem carries a stable code")[1]))
    covered = {key[0] for p in BAD_FILES for key in parse_expectations(p).issues}
    assert len(documented) >= 25
    assert documented <= covered, f"no bad file for {sorted(documented - covered)}"


def test_several_mistakes_are_all_reported():
    """Independent mistakes in one file come out together, not one per run."""
    issues = validate_issues(BAD / "several_mistakes.yaml")
    assert len({i.code for i in issues}) >= 5


def test_cli_fails_every_bad_file_without_traceback():
    """One `omnigraph validate` run over the whole corpus: exit 2, no traceback, every file:line:col named."""
    proc = subprocess.run([sys.executable, "-m", "omnigraph", "validate", *map(str, BAD_FILES)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "ok:" not in proc.stdout
    for path in BAD_FILES:
        for code, file, line, col, _, _ in parse_expectations(path).issues:
            where = f"{file}:{line}:{col}" if line else file
            assert f"{where}: {code}:" in proc.stderr, f"{path.name}: {where} {code} not printed"
