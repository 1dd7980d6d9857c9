"""Tiny node kinds for runtime tests: integers flowing through streams and whole values."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from pydantic import Field

from omnigraph.runtime.context import current_run
from omnigraph.runtime.errors import UserError
from omnigraph.runtime.node import Node, NodeConfig
from omnigraph.runtime.payloads import Payload
from omnigraph.runtime.ports import Input, Output


@dataclass(frozen=True)
class Number(Payload):
    value: int

    @classmethod
    def from_cli(cls, text: str) -> Number:
        return cls(int(text))


class Count(Node):
    """Streams 0..n-1; `gate` (a test-owned Event name) pauses after the first item until set."""

    kind = "t_count"

    class Config(NodeConfig):
        gate: str | None = None
        delay: float = 0.0

    inputs = (Input("n", Number),)
    outputs = (Output("items", Number, stream=True),)
    gates: dict[str, threading.Event] = {}

    def stream(self, n: Number) -> Iterator[tuple[str, Number]]:
        for i in range(n.value):
            yield "items", Number(i)
            if i == 0 and self.config.gate:
                assert self.gates[self.config.gate].wait(10), "the first item never reached the output"
            if self.config.delay:
                time.sleep(self.config.delay)


class Scale(Node):
    kind = "t_scale"

    class Config(NodeConfig):
        factor: int = 2

    inputs = (Input("items", Number, stream=True),)
    outputs = (Output("items", Number, stream=True),)

    def stream(self, items: Iterator[Number]) -> Iterator[tuple[str, Number]]:
        for item in items:
            yield "items", Number(item.value * self.config.factor)


class HeldScale(Scale):
    """`t_scale` whose construction (so also a Ray actor's restart) waits while the file `hold` exists."""

    kind = "t_held_scale"

    class Config(NodeConfig):
        factor: int = 2
        hold: str

    def __init__(self, config: Config | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        held = Path(self.config.hold)
        for _ in range(6000):  # at most about a minute; the test removes the file much sooner
            if not held.exists():
                break
            threading.Event().wait(0.01)


class Sum(Node):
    kind = "t_sum"
    inputs = (Input("items", Number, stream=True),)
    outputs = (Output("total", Number),)

    def stream(self, items: Iterator[Number]) -> Iterator[tuple[str, Number]]:
        yield "total", Number(sum(item.value for item in items))


class Zip(Node):
    """Fan-in: adds two streams item by item."""

    kind = "t_zip"
    inputs = (Input("a", Number, stream=True), Input("b", Number, stream=True))
    outputs = (Output("items", Number, stream=True),)

    def stream(self, a: Iterator[Number], b: Iterator[Number]) -> Iterator[tuple[str, Number]]:
        for x, y in zip(a, b):
            yield "items", Number(x.value + y.value)


class Add(Node):
    """Whole values: a + (b or 100 when b is absent)."""

    kind = "t_add"
    inputs = (Input("a", Number), Input("b", Number, required=False))
    outputs = (Output("total", Number),)

    def process(self, a: Number, b: Number | None) -> dict[str, Any]:
        return {"total": Number(a.value + (b.value if b is not None else 100))}


class Either(Node):
    """Exactly one of two optional inputs, passed on (like a node taking a waveform or a stream)."""

    kind = "t_either"
    inputs = (Input("a", Number, required=False), Input("b", Number, required=False))
    outputs = (Output("value", Number),)

    def process(self, a: Number | None, b: Number | None) -> dict[str, Any]:
        if (a is None) == (b is None):
            raise UserError("t_either takes exactly one of a and b")
        return {"value": a or b}


class Ask(Node):
    """One side of a loop: asks `rounds` questions, each the previous answer + 1."""

    kind = "t_ask"

    class Config(NodeConfig):
        rounds: int = 3

    inputs = (Input("start", Number), Input("answers", Number, stream=True))
    outputs = (Output("questions", Number, stream=True), Output("last", Number))

    def stream(self, start: Number, answers: Iterator[Number]) -> Iterator[tuple[str, Number]]:
        value = start.value
        for _ in range(self.config.rounds):
            yield "questions", Number(value)
            value = next(answers).value + 1
        yield "last", Number(value)


class Fail(Node):
    """Passes `after` items through, then raises."""

    kind = "t_fail"

    class Config(NodeConfig):
        after: int = 0

    inputs = (Input("items", Number, stream=True),)
    outputs = (Output("items", Number, stream=True),)

    def stream(self, items: Iterator[Number]) -> Iterator[tuple[str, Number]]:
        for i, item in enumerate(items):
            if i == self.config.after:
                raise ValueError(f"boom at item {i}")
            yield "items", item


class Endless(Node):
    """Streams forever (until cancelled)."""

    kind = "t_endless"
    inputs = (Input("n", Number),)
    outputs = (Output("items", Number, stream=True),)

    def stream(self, n: Number) -> Iterator[tuple[str, Number]]:
        i = 0
        while True:
            yield "items", Number(i)
            i += 1


class Misbehave(Node):
    """Breaks the node contract in the way `how` says."""

    kind = "t_misbehave"

    class Config(NodeConfig):
        how: str = Field("wrong-type")

    inputs = (Input("n", Number),)
    outputs = (Output("total", Number), Output("items", Number, stream=True))

    def stream(self, n: Number) -> Iterator[tuple[str, Any]]:
        if self.config.how == "wrong-type":
            yield "items", 5
        elif self.config.how == "unknown-port":
            yield "nope", n
        elif self.config.how == "twice":
            yield "total", n
            yield "total", n


class Seeded(Node):
    """Reports the node seed the run context gives it."""

    kind = "t_seeded"
    inputs = (Input("n", Number),)
    outputs = (Output("seed", Number),)

    def process(self, n: Number) -> dict[str, Any]:
        return {"seed": Number(current_run().node_seed() % 1000)}


class Rendezvous(Node):
    """Sums its stream once `max_batch` runs are inside this loaded node at the same time (a barrier, bounded by
    `wait` seconds): a run fails unless that many concurrent runs reach this one instance together."""

    kind = "t_rendezvous"

    class Config(NodeConfig):
        max_batch: int = 2
        wait: float = 60.0

    inputs = (Input("items", Number, stream=True),)
    outputs = (Output("total", Number),)

    def __init__(self, config: Config | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        self.barrier = threading.Barrier(self.config.max_batch, timeout=self.config.wait)

    def process(self, items: Iterator[Number]) -> dict[str, Any]:
        values = iter(items)
        first = next(values)
        self.barrier.wait()
        return {"total": Number(first.value + sum(item.value for item in values))}


ALL = [Count, Scale, HeldScale, Sum, Zip, Add, Either, Ask, Fail, Endless, Misbehave, Seeded, Rendezvous]
