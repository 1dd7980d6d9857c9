"""The node contract: a kind name, a typed config, declared ports, cheap construction, heavy `load`."""
from __future__ import annotations

import threading
from typing import Any, Callable, ClassVar, Iterator

from pydantic import BaseModel, ConfigDict

from .device import resolve_dtype
from .errors import CheckpointError, MissingCheckpoint
from .ports import Port


class NodeConfig(BaseModel):
    """Base of node configs: unknown fields are errors, values are frozen once validated.

    Numbers are strict: a boolean is not a number, text is not converted, an int field takes no float (`1e29`),
    and floats must be finite. Int fields of shipped kinds also give an upper bound (`Field(le=...)`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Node:
    """Base of every node kind.

    Subclasses set `kind`, `Config`, `inputs` and `outputs`, and implement either `process` (whole values in,
    a dict of whole values out) or `stream` (a generator of `(port, item)` pairs; stream inputs arrive as
    iterators). The constructor must stay cheap; weights and other heavy state load in `setup`, which `load`
    calls at most once. Nodes keep no per-run state on `self`: several runs may share one loaded node.
    A config with a `dtype` field (`auto` or a torch dtype name) gets it resolved by `load` into `self.dtype`
    (see `device.resolve_dtype`), for `setup` to load weights in.
    """

    kind: ClassVar[str] = ""
    Config: ClassVar[type[NodeConfig]] = NodeConfig
    inputs: ClassVar[tuple[Port, ...]] = ()
    outputs: ClassVar[tuple[Port, ...]] = ()
    needs_checkpoint: ClassVar[bool] = False  # True for nodes that load weights or tokenizer files
    # builds (once, cached) the checkpoint a run uses when none is given: its family's random one
    default_checkpoint: ClassVar[Callable[[], Any] | None] = None
    device: str | None = None  # where `load` put the node: cpu or cuda
    dtype: Any = None  # the torch dtype `load` resolved from the config's `dtype` field (None without one)

    # config.json `model_type`s the kind reads (empty: any); a checkpoint of another family is refused, located
    model_types: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: NodeConfig | None = None, *, name: str | None = None,
                 weights: str | None = None):
        self.config = config if config is not None else self.Config()
        self.name = name or self.kind
        self.weights = weights
        self._load_lock = threading.Lock()
        self._loaded = False

    def load(self, device: str = "cpu", checkpoint: Any = None) -> None:
        """Load heavy state once; later calls return at once."""
        with self._load_lock:
            if not self._loaded:
                self._setup_on(device, checkpoint)
                self._loaded = True

    def setup(self, device: str, checkpoint: Any) -> None:
        """Override to load weights or other heavy state (reading only this node's weight prefix)."""

    def check_checkpoint(self, checkpoint: Any) -> None:
        """Check what `setup` needs from a checkpoint without reading tensor data (raise UserError on a
        problem). `checkpoint` is a probe whose `load` checks names, shapes and dtypes against the shard headers
        and returns meta tensors (runtime/checkpoint_check.py). The default runs `setup` on the meta device, under
        `MetaShapes` (runtime/checkpoint_meta.py: no Python meta kernel, so no import of torch._dynamo); override
        it when `setup` does more than read config.json, side files and weights."""
        from .checkpoint_meta import MetaShapes

        with MetaShapes():
            self._setup_on("meta", checkpoint)

    def _setup_on(self, device: str, checkpoint: Any) -> None:
        """`setup`, with `device` and `dtype` set for it (a node that needs a checkpoint gets one, of a family the
        kind reads)."""
        if checkpoint is None and self.needs_checkpoint:
            raise MissingCheckpoint(self.name, self.kind)
        model_type = checkpoint.config.get("model_type") if checkpoint is not None else None
        if self.model_types and model_type is not None and model_type not in self.model_types:
            raise CheckpointError(
                f"node '{self.name}' ({self.kind}): {checkpoint.path / 'config.json'}: model_type is '{model_type}', "
                f"and kind '{self.kind}' reads {' or '.join(repr(t) for t in self.model_types)} checkpoints: pass "
                "--checkpoint DIR of that family")
        self.device = device
        self.dtype = resolve_dtype(getattr(self.config, "dtype", None), device, checkpoint)
        self.setup(device, checkpoint)

    def fuse_loop(self, partner: Node) -> None:
        """`partner`, loaded in this process, feeds this node's loop input and is fed directly by it
        (runtime/loops.py): a node may then compute the loop for both. The default keeps them apart."""

    def process(self, **inputs: Any) -> dict[str, Any]:
        """Whole values in, whole values out (by output port name). Absent optional inputs are None."""
        raise NotImplementedError(f"node kind '{self.kind}' implements neither process() nor stream()")

    def stream(self, **inputs: Any) -> Iterator[tuple[str, Any]]:
        """Yield `(output port, item)` as results are ready. The default wraps `process`."""
        yield from self.process(**inputs).items()

    @classmethod
    def input_port(cls, name: str) -> Port | None:
        return next((p for p in cls.inputs if p.name == name), None)

    @classmethod
    def output_port(cls, name: str) -> Port | None:
        return next((p for p in cls.outputs if p.name == name), None)
