"""Node kinds are independent: no module of nodes/<kind>/ imports another kind (shared folders without a
node.py, such as common/, qwen/ and qwen3/, are for what kinds share)."""
from __future__ import annotations

import ast
from pathlib import Path

import omnigraph.nodes

NODES = Path(omnigraph.nodes.__file__).resolve().parent
KINDS = {p.parent.name for p in NODES.glob("*/node.py")}


def imported_folders(path: Path, kind: str) -> set[str]:
    """The nodes/ folders a module of nodes/<kind>/ imports (relative or absolute `omnigraph.nodes.X`)."""
    folders = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom):
            module = (node.module or "").split(".")
            if node.level == 2:  # from ..X import y / from .. import X
                folders |= {module[0]} if module[0] else {alias.name for alias in node.names}
            elif node.level == 0 and module[:2] == ["omnigraph", "nodes"]:
                folders |= {module[2]} if len(module) > 2 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[:2] == ["omnigraph", "nodes"] and len(parts) > 2:
                    folders.add(parts[2])
    return folders - {kind}


def test_no_kind_imports_another_kind() -> None:
    found = {f"{path.relative_to(NODES)} imports {folder}"
             for kind in KINDS for path in (NODES / kind).rglob("*.py")
             for folder in imported_folders(path, kind) if folder in KINDS}
    assert not found, "move what kinds share to nodes/common/ (or a family folder without node.py):\n" + \
        "\n".join(sorted(found))


def test_the_check_sees_relative_and_absolute_imports(tmp_path: Path) -> None:
    module = tmp_path / "x.py"
    module.write_text("from ..thinker.model import f\nfrom .. import talker\nimport omnigraph.nodes.code2wav.node\n"
                      "from ..common.rope import g\nfrom .model import h\n")
    assert imported_folders(module, "prompt") == {"thinker", "talker", "code2wav", "common"}
