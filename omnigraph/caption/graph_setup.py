"""The graph a job runs per window: `--graph` (default captioner) with the job's settings, checked to take an
`audio` file input and give a `text` output before anything loads."""
from __future__ import annotations

from typing import Any

from ..runtime.errors import UserError
from ..runtime.graph import Graph
from ..runtime.overrides import ALL_NODES, Setting
from ..runtime.payloads import FilePath

# How the released Captioner is sampled (vendor docs); set on nodes whose YAML leaves these fields unset.
CAPTIONER_SAMPLING = {"temperature": 0.6, "top_p": 0.95, "top_k": 20}


def caption_graph(ref: str, *, greedy: bool, max_new_tokens: int | None, batch_size: int,
                  needs_text: bool) -> Graph:
    """Load `ref` with --greedy / --max-new-tokens on every node that has them, the Captioner's sampling where
    the graph leaves it unset, and every batching node's `max_batch` raised to `batch_size`."""
    from ..runtime.validate import load_graph

    flags: dict[tuple[str, str], Any] = {}
    if greedy:
        flags[(ALL_NODES, "greedy")] = Setting(True, "--greedy")
    if max_new_tokens is not None:
        flags[(ALL_NODES, "max_new_tokens")] = Setting(max_new_tokens, "--max-new-tokens")
    graph = load_graph(ref, overrides=flags)
    _check_shape(graph, needs_text)
    extra: dict[tuple[str, str], Any] = {}
    for name, node in graph.nodes.items():
        config = node.config
        if not greedy and not getattr(config, "greedy", True):
            extra.update({(name, f): v for f, v in CAPTIONER_SAMPLING.items() if getattr(config, f, 0) is None})
        if getattr(config, "max_batch", batch_size) < batch_size:
            extra[(name, "max_batch")] = Setting(batch_size, "--batch-size")
    return load_graph(ref, overrides={**flags, **extra}) if extra else graph


def sampling_of(graph: Graph) -> dict[str, Any]:
    """What the record's `settings` say about decoding: the first decoding node's fields."""
    for node in graph.nodes.values():
        fields = type(node.config).model_fields
        if "greedy" in fields:
            keys = ("greedy", "max_new_tokens", "temperature", "top_p", "top_k")
            return {k: getattr(node.config, k) for k in keys if k in fields}
    return {}


def _check_shape(graph: Graph, needs_text: bool) -> None:
    audio = graph.inputs.get("audio")
    if audio is None or not issubclass(FilePath, audio.port.type):
        raise UserError(f"--graph '{graph.file}': a captioning graph needs an input named 'audio' that takes a file "
                        f"(as captioner.yaml's does); this one has inputs: {', '.join(graph.inputs) or 'none'}")
    if "text" not in graph.outputs:
        raise UserError(f"--graph '{graph.file}': a captioning graph needs an output named 'text' (the caption); "
                        f"this one has outputs: {', '.join(graph.outputs) or 'none'}")
    if needs_text and "text" not in graph.inputs:
        raise UserError(f"--graph '{graph.file}' has no 'text' input, so it cannot take a prompt (--prompt or a "
                        f"manifest's prompt column); leave the prompt out, or add a 'text' input to the graph")
