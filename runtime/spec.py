"""The graph file grammar as pydantic models (also the source of `omnigraph schema`)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
_NAME = re.compile(NAME_PATTERN)
_ENDPOINT = r"([A-Za-z_][A-Za-z0-9_\-]*)\.([A-Za-z_][A-Za-z0-9_]*)"
_EDGE = re.compile(rf"^\s*{_ENDPOINT}\s*->\s*{_ENDPOINT}\s*$")
_PORT_REF = re.compile(rf"^\s*{_ENDPOINT}\s*$")
EDGE_PATTERN = _EDGE.pattern
PORT_REF_PATTERN = _PORT_REF.pattern


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Placement(_Strict):
    """Where a node runs. Nodes with the same `group` share one process (e.g. Talker and code predictor).

    Amounts are strict numbers: finite, never booleans, within what one cluster could hold.
    """

    model_config = ConfigDict(strict=True, allow_inf_nan=False)

    group: str | None = Field(None, description="Nodes naming the same group are placed in one process.")
    num_gpus: float = Field(0, ge=0, le=1024, description="GPUs reserved for the node (or its group).")
    num_cpus: float = Field(1, ge=0, le=65536, description="CPU cores reserved for the node (or its group).")
    memory: int | None = Field(None, ge=0, le=1 << 60, description="Bytes of host memory reserved.")
    resources: dict[str, Annotated[float, Field(ge=0, le=1e12)]] = Field(
        default_factory=dict, description="Custom cluster resources: name -> amount.")
    replicas: int = Field(1, ge=1, le=1024, description="Copies serving concurrent runs.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Device hint for the node's tensors.")


class NodeSpec(_Strict):
    """One node: its kind, config, checkpoint weight prefix and placement."""

    kind: str = Field(description="A registered node kind (see `omnigraph nodes`).")
    config: dict[str, Any] = Field(default_factory=dict, description="The kind's config fields.")
    weights: str | None = Field(None, description="Checkpoint key prefix this node loads, e.g. 'thinker.'.")
    placement: Placement = Field(default_factory=Placement)
    doc: str = Field("", description="What this node is for, shown by `omnigraph show`.")


class InputSpec(_Strict):
    """A graph input: a value the caller gives, delivered to one or more input ports."""

    to: list[str] = Field(min_length=1, description="Input ports fed by this graph input ('node.port').")
    required: bool = Field(False, description="Fail before the run when the caller omits it.")
    default: Any = Field(None, description="Value used when the caller omits it (parsed like --input).")
    doc: str = ""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"to": [value]}
        if isinstance(value, list):
            return {"to": value}
        return value

    @field_validator("to", mode="before")
    @classmethod
    def _one_ref(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("to")
    @classmethod
    def _port_refs(cls, refs: list[str]) -> list[str]:
        for ref in refs:
            check_port_ref(ref)
        return refs


class InsertSpec(_Strict):
    """Insert `node` on an existing edge (`on`: `src -> node.input` and `node.output -> dst` replace it), or
    after an output port (`after`: everything that read `src.port` reads `node.output` instead)."""

    node: str = Field(description="A node declared under 'nodes:' of this file.")
    on: str | None = Field(None, description="The existing edge, 'src.port -> dst.port'.")
    after: str | None = Field(None, description="An output port, 'node.port': all its readers move behind the node.")
    input: str | None = Field(None, description="The inserted node's input port (default: the one that fits).")
    output: str | None = Field(None, description="The inserted node's output port (default: the one that fits).")

    @field_validator("on")
    @classmethod
    def _edge(cls, text: str | None) -> str | None:
        if text is not None:
            parse_edge(text)
        return text

    @field_validator("after")
    @classmethod
    def _port(cls, text: str | None) -> str | None:
        if text is not None:
            check_port_ref(text)
        return text

    @model_validator(mode="after")
    def _one_place(self) -> InsertSpec:
        if (self.on is None) == (self.after is None):
            raise ValueError("give exactly one of 'on' (an edge) and 'after' (an output port)")
        return self


class GraphFile(_Strict):
    """A graph file. With `extends`, the other sections edit the parent graph."""

    name: str | None = Field(None, pattern=NAME_PATTERN, description="Graph name, also the default output "
                             "folder out/NAME (default: the file name).")
    description: str = ""
    extends: str | None = Field(None, description="A shipped graph name or a path relative to this file.")
    nodes: dict[str, NodeSpec] = Field(default_factory=dict, description="Nodes to add, by name.")
    replace: dict[str, NodeSpec] = Field(default_factory=dict,
                                         description="Inherited nodes to replace; their edges are kept.")
    remove: list[str] = Field(default_factory=list, description="Inherited nodes to remove with their edges.")
    disconnect: list[str] = Field(default_factory=list, description="Inherited edges to remove, "
                                  "'src.port -> dst.port' (e.g. to feed an input from another node).")
    insert: list[InsertSpec] = Field(default_factory=list, description="Nodes to insert on existing edges.")
    edges: list[str] = Field(default_factory=list, description="Edges 'src.port -> dst.port'.")
    loops: list[str] = Field(default_factory=list,
                             description="Feedback edges, the only cycles allowed (stream ports only).")
    inputs: dict[str, InputSpec] = Field(default_factory=dict, description="Graph inputs by name.")
    outputs: dict[str, str] = Field(default_factory=dict, description="Graph outputs: name -> 'node.port'.")


@dataclass(frozen=True)
class Endpoint:
    node: str
    port: str

    def __str__(self) -> str:
        return f"{self.node}.{self.port}"


def parse_edge(text: str) -> tuple[Endpoint, Endpoint]:
    match = _EDGE.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"edge {text!r} is not of the form 'src_node.port -> dst_node.port'")
    a, b, c, d = match.groups()
    return Endpoint(a, b), Endpoint(c, d)


def check_port_ref(text: str) -> Endpoint:
    match = _PORT_REF.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not of the form 'node.port'")
    return Endpoint(*match.groups())


def is_valid_name(name: Any) -> bool:
    return isinstance(name, str) and bool(_NAME.match(name))


def name_from_file(file: str) -> str:
    """The default graph name: the file's stem, with characters the name rule forbids replaced by '_'."""
    stem = re.sub(r"[^A-Za-z0-9_\-]", "_", PurePath(file).stem)
    return stem if is_valid_name(stem) else f"_{stem}"
