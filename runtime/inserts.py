"""`insert:` edits: a node of this file put on an existing edge (`on:`) or behind an output port (`after:`).

Ports the edit does not name are chosen here, from the node kinds: the one port of the inserted node that fits.
"""
from __future__ import annotations

from typing import Callable

from .composed import Composed, EdgeEntry, Where
from .errors import GraphIssue, did_you_mean
from .node import Node
from .ports import Port, feed_problem
from .spec import Endpoint, InsertSpec, check_port_ref, parse_edge

KindOf = Callable[[str], "type[Node] | None"]  # node name -> its class; None: unknown (reported elsewhere)


def apply_insert(insert: InsertSpec, where: Where, own_new: set[str], out: Composed, kind_of: KindOf) -> None:
    if insert.node not in own_new:
        out.issues.append(GraphIssue("unknown-node", f"inserted node '{insert.node}' must be declared under "
                                     "'nodes:' in this file", where.loc("node"), node=insert.node,
                                     hint=did_you_mean(insert.node, own_new)))
        return
    if insert.after is not None:
        _after(insert, where, out, kind_of)
    else:
        _on(insert, where, out, kind_of)


def _on(insert: InsertSpec, where: Where, out: Composed, kind_of: KindOf) -> None:
    """`src -> dst` becomes `src -> node.input` and `node.output -> dst`."""
    src, dst = parse_edge(insert.on)
    match = next((e for e in out.edges if e.src == src and e.dst == dst and not e.loop), None)
    if match is None:
        out.issues.append(GraphIssue("unknown-edge", f"no edge '{src} -> {dst}' to insert '{insert.node}' on",
                                     where.loc("on"), hint=did_you_mean(f"{src} -> {dst}",
                                                                        [str(e) for e in out.edges])))
        out.reported.unsure_inputs.add(insert.node)
        return
    out.edges.remove(match)
    _link(src, insert.node, insert.input, where, out, kind_of)
    _link_out(insert.node, insert.output, dst, where, out, kind_of)


def _after(insert: InsertSpec, where: Where, out: Composed, kind_of: KindOf) -> None:
    """Every edge and graph output reading `after` reads the inserted node's output instead."""
    src = check_port_ref(insert.after)
    readers = [e for e in out.edges if e.src == src and not e.loop]
    outputs = [o for o in out.outputs.values() if o.src == src]
    if not readers and not outputs:
        out.issues.append(GraphIssue("unknown-edge", f"nothing reads '{src}' to insert '{insert.node}' after",
                                     where.loc("after"), hint=did_you_mean(str(src), [str(e.src) for e in out.edges])))
        out.reported.unsure_inputs.add(insert.node)
        return
    out.edges = [e for e in out.edges if e not in readers]
    _link(src, insert.node, insert.input, where, out, kind_of)
    for reader in readers:
        _link_out(insert.node, insert.output, reader.dst, where, out, kind_of)
    for entry in outputs:
        port = insert.output or _stand_in(insert.node, src, where, out, kind_of)
        if port is None:
            del out.outputs[entry.name]
        else:
            entry.src = Endpoint(insert.node, port)


def _link(src: Endpoint, node: str, given: str | None, where: Where, out: Composed, kind_of: KindOf) -> None:
    """The edge `src -> node.input`, the input named or the one that fits."""
    port = given or _one_fitting(node, src, into_node=True, where=where, out=out, kind_of=kind_of)
    if port is None:
        out.reported.unsure_inputs.add(node)
    else:
        out.edges.append(EdgeEntry(src, Endpoint(node, port), where))


def _link_out(node: str, given: str | None, dst: Endpoint, where: Where, out: Composed, kind_of: KindOf) -> None:
    """The edge `node.output -> dst`, the output named or the one that fits."""
    port = given or _one_fitting(node, dst, into_node=False, where=where, out=out, kind_of=kind_of)
    if port is None:
        out.reported.claimed.add(dst)
    else:
        out.edges.append(EdgeEntry(Endpoint(node, port), dst, where))


def _one_fitting(node: str, other: Endpoint, *, into_node: bool, where: Where, out: Composed,
                 kind_of: KindOf) -> str | None:
    """The one port of `node` that `other` (an output when `into_node`, else an input) connects to, or None."""
    cls, other_cls = kind_of(node), kind_of(other.node)
    if cls is None or other_cls is None:
        return None
    other_port = (other_cls.output_port if into_node else other_cls.input_port)(other.port)
    if other_port is None:  # the edit names a port that does not exist: reported with the edge it names
        return None
    candidates = cls.inputs if into_node else cls.outputs
    fits = [p for p in candidates
            if (feed_problem(other_port, p) if into_node else feed_problem(p, other_port)) is None]
    side = "input" if into_node else "output"
    return _only(fits, candidates, f"'{node}' ({cls.kind}) has {{what}} {side} port that fits {other}", side,
                 node, where, out)


def _stand_in(node: str, src: Endpoint, where: Where, out: Composed, kind_of: KindOf) -> str | None:
    """For a graph output moved behind `node`: its one output like the port `src` it replaces."""
    cls, src_cls = kind_of(node), kind_of(src.node)
    replaced = src_cls.output_port(src.port) if src_cls else None
    if cls is None or replaced is None:
        return None
    fits = [p for p in cls.outputs if p.mode is replaced.mode and issubclass(p.type, replaced.type)]
    return _only(fits, cls.outputs, f"'{node}' ({cls.kind}) has {{what}} output port that can stand in for {src}",
                 "output", node, where, out)


def _only(fits: list[Port], candidates: tuple[Port, ...], message: str, side: str, node: str, where: Where,
          out: Composed) -> str | None:
    if len(fits) == 1:
        return fits[0].name
    names = ", ".join(p.name for p in candidates) or "none"
    out.issues.append(GraphIssue("insert-port", message.format(what="no" if not fits else "more than one"),
                                 where.loc(), node=node, hint=f"name it with '{side}:' (ports: {names})"))
    return None
