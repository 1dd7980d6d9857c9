"""Pictures of a graph: text, Mermaid, Graphviz dot, and SVG/PNG drawn with matplotlib.

Streams are drawn differently from whole values everywhere: thick/`==>` for streams, dotted for loop edges.
"""
from __future__ import annotations

from pathlib import Path

from .graph import Graph, GraphEdge, GraphNode

FORMATS = ("text", "mermaid", "dot", "svg", "png")


def _placement(node: GraphNode) -> str:
    p = node.placement
    parts = []
    if p.group:
        parts.append(f"group={p.group}")
    if p.num_gpus:
        parts.append(f"gpus={p.num_gpus:g}")
    if p.num_cpus != 1:
        parts.append(f"cpus={p.num_cpus:g}")
    if p.memory is not None:
        parts.append(f"memory={p.memory}")
    parts += [f"{name}={amount:g}" for name, amount in sorted(p.resources.items())]
    if p.replicas != 1:
        parts.append(f"replicas={p.replicas}")
    if p.device != "auto":
        parts.append(f"device={p.device}")
    return ", ".join(parts)


def _edge_label(edge: GraphEdge) -> str:
    label = f"{edge.src.port}→{edge.dst.port}: {edge.port.type.__name__}"
    return label + (" stream" if edge.port.is_stream else "") + (" (loop)" if edge.loop else "")


def to_text(graph: Graph) -> str:
    lines = [f"graph {graph.name} ({graph.file})"]
    if graph.description:
        lines.append(f"  {graph.description.strip()}")
    lines.append("inputs:")
    for inp in graph.inputs.values():
        flag = "required" if inp.required else ("default " + repr(inp.default) if inp.default is not None
                                                else "optional")
        targets = ", ".join(str(t) for t in inp.targets)
        lines.append(f"  {inp.name}: {inp.port.type.__name__} -> {targets} [{flag}]")
    lines.append("nodes:")
    for name in graph.topological_order():
        node = graph.nodes[name]
        where = _placement(node)
        lines.append(f"  {name} ({node.kind}){' [' + where + ']' if where else ''}")
        for port in node.cls.inputs:
            lines.append(f"    in  {port.name}: {port.describe()}")
        for port in node.cls.outputs:
            lines.append(f"    out {port.name}: {port.describe()}")
    lines.append("edges:   (== stream, -- whole value, ~~ loop)")
    for edge in graph.edges:
        arrow = "~~>" if edge.loop else ("==>" if edge.port.is_stream else "-->")
        lines.append(f"  {edge.src} {arrow} {edge.dst}   [{edge.port.type.__name__}]")
    lines.append("outputs:")
    for out in graph.outputs.values():
        lines.append(f"  {out.name}: {out.src} [{out.port.describe()}]")
    return "\n".join(lines) + "\n"


def to_mermaid(graph: Graph) -> str:
    lines = ["flowchart LR"]
    for node in graph.nodes.values():
        where = _placement(node)
        label = f"<b>{node.name}</b><br/>{node.kind}" + (f"<br/><i>{_mq(where)}</i>" if where else "")
        lines.append(f'  {_mid(node.name)}["{label}"]')
    for inp in graph.inputs.values():
        lines.append(f'  in_{_mid(inp.name)}(["input: {inp.name}"])')
        for t in inp.targets:
            lines.append(f'  in_{_mid(inp.name)} -->|"{t.port}"| {_mid(t.node)}')
    for edge in graph.edges:
        arrow = "-.->" if edge.loop else ("==>" if edge.port.is_stream else "-->")
        lines.append(f'  {_mid(edge.src.node)} {arrow}|"{_edge_label(edge)}"| {_mid(edge.dst.node)}')
    for out in graph.outputs.values():
        arrow = "==>" if out.port.is_stream else "-->"
        lines.append(f'  out_{_mid(out.name)}(["output: {out.name}"])')
        lines.append(f'  {_mid(out.src.node)} {arrow}|"{out.src.port}"| out_{_mid(out.name)}')
    return "\n".join(lines) + "\n"


def to_dot(graph: Graph) -> str:
    lines = [f'digraph "{_dq(graph.name)}" {{', "  rankdir=LR;",
             '  node [shape=box, style=rounded, fontname="Helvetica"];']
    for node in graph.nodes.values():
        where = _placement(node)
        label = f"{node.name}\\n({node.kind})" + (f"\\n[{_dq(where)}]" if where else "")
        lines.append(f'  "{node.name}" [label="{label}"];')
    for inp in graph.inputs.values():
        lines.append(f'  "input:{inp.name}" [shape=ellipse, label="{inp.name}"];')
        for t in inp.targets:
            lines.append(f'  "input:{inp.name}" -> "{t.node}" [label="{t.port}"];')
    for edge in graph.edges:
        style = "dotted" if edge.loop else ("bold" if edge.port.is_stream else "solid")
        extra = ', constraint=false' if edge.loop else ""
        lines.append(f'  "{edge.src.node}" -> "{edge.dst.node}" [label="{_edge_label(edge)}", style={style}'
                     f'{", penwidth=2" if edge.port.is_stream else ""}{extra}];')
    for out in graph.outputs.values():
        lines.append(f'  "output:{out.name}" [shape=ellipse, label="{out.name}"];')
        style = "bold" if out.port.is_stream else "solid"
        lines.append(f'  "{out.src.node}" -> "output:{out.name}" [label="{out.src.port}", style={style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw(graph: Graph, path: Path, fmt: str) -> None:
    """SVG or PNG through matplotlib: nodes in columns by dependency depth, streams thick, loops dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    g = nx.DiGraph()
    for name in graph.nodes:
        g.add_node(name)
    for edge in graph.edges:
        if not edge.loop:
            g.add_edge(edge.src.node, edge.dst.node)
    for layer, names in enumerate(nx.topological_generations(g)):
        for name in names:
            g.nodes[name]["layer"] = layer
    pos = nx.multipartite_layout(g, subset_key="layer") if g.number_of_nodes() else {}
    width = 3 + 2.6 * (max((d["layer"] for _, d in g.nodes(data=True)), default=0) + 1)
    fig, ax = plt.subplots(figsize=(width, 2 + 0.9 * max(len(graph.nodes), 2)))
    labels = {}
    for name, node in graph.nodes.items():
        where = _placement(node)
        labels[name] = f"{name}\n({node.kind})" + (f"\n{where}" if where else "")
    for edge in graph.edges:
        nx.draw_networkx_edges(
            g, pos, edgelist=[(edge.src.node, edge.dst.node)], ax=ax, arrows=True, arrowsize=16,
            width=3.0 if edge.port.is_stream else 1.2, style="dashed" if edge.loop else "solid",
            connectionstyle="arc3,rad=0.35" if edge.loop else "arc3,rad=0.05", node_size=3000)
    nx.draw_networkx_edge_labels(
        g, pos, ax=ax, font_size=7,
        edge_labels={(e.src.node, e.dst.node): _edge_label(e) for e in graph.edges if not e.loop})
    nx.draw_networkx_labels(g, pos, labels=labels, ax=ax, font_size=8,
                            bbox={"boxstyle": "round", "fc": "#eef3ff", "ec": "#3a5fcd"})
    ax.set_title(f"{graph.name}   (thick: stream, thin: whole value, dashed: loop)", fontsize=9)
    ax.axis("off")
    ax.margins(0.15)
    fig.tight_layout()
    fig.savefig(path, format=fmt)
    plt.close(fig)


def _mid(name: str) -> str:
    """A Mermaid node id; one-to-one ('a-b' and 'a_b' must not become the same node)."""
    return "n_" + name.replace("_", "__").replace("-", "_h")


def _mq(text: str) -> str:
    """Text for inside a quoted Mermaid label."""
    return text.replace('"', "#quot;")


def _dq(text: str) -> str:
    """Text for inside a quoted Graphviz string."""
    return text.replace("\\", "\\\\").replace('"', '\\"')
