"""jsonl_writer: writes every item of a stream as one JSON line, flushed as it arrives."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from pydantic import Field

from ...runtime.node import Node, NodeConfig
from ...runtime.payloads import FilePath, Payload
from ...runtime.ports import Input, Output
from ...runtime.writable import OutputFile, check_writable_file


class JsonlWriter(Node):
    kind = "jsonl_writer"

    class Config(NodeConfig):
        path: OutputFile = Field(description="File to write (parent folders are created; checked before the run).")
        append: bool = Field(False, description="Append to an existing file instead of replacing it.")

    inputs = (Input("items", Payload, stream=True, doc="Any payloads."),)
    outputs = (Output("file", FilePath, doc="The file written."),)

    def stream(self, items: Iterator[Payload]) -> Iterator[tuple[str, FilePath]]:
        path = Path(self.config.path)
        check_writable_file(path, f"the file of node '{self.name}'")  # a clear error if it changed since the check
        with path.open("a" if self.config.append else "w", encoding="utf-8") as out:
            for item in items:
                out.write(json.dumps(item.to_json(), ensure_ascii=False) + "\n")
                out.flush()
        yield "file", FilePath(str(path))
