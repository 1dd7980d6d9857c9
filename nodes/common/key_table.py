"""One weight-key table per model: every checkpoint tensor's on-disk name, shape, our name and random init.

A model's `weights.py` builds its table from its args (or config.json section); the loader and the
tiny-checkpoint writer both read that one table, so a key or shape is written once:

    table = KeyTable("thinker.visual.")
    table.linear("blocks.0.attn.qkv", 3 * D, D, ours="blocks.0.qkv")
    state = table.load(checkpoint, dtype=dtype, device=device)   # our name -> tensor, shapes checked
    entries = table.entries()                                    # (full key, shape, init) for the writer

A fusion (stacking experts, splitting qkv, reshaping a conv) is done by the model's loader on the returned
state; `Key.ours` may repeat a prefix shared by the tensors a fusion combines.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    import torch

Init = tuple[str, float, float]  # ("normal", mean, std): how the tiny-checkpoint writer draws the tensor

NORM_W: Init = ("normal", 1.0, 0.05)   # norm weights: 1 plus a little noise
SMALL: Init = ("normal", 0.0, 0.02)    # biases
EMBED: Init = ("normal", 0.0, 1.0)     # embedding tables


def fan_in_init(fan_in: int, gain: float = 1.0) -> Init:
    """Normal with std gain/sqrt(fan_in): keeps activations of random weights at unit scale."""
    return ("normal", 0.0, gain / math.sqrt(fan_in))


@dataclass(frozen=True)
class Key:
    checkpoint: str           # on-disk key without the table's prefix
    shape: tuple[int, ...]    # on-disk shape
    ours: str                 # our state-dict name (before any fusion)
    init: Init
    optional: bool = False    # may be absent from a checkpoint (e.g. a tied head)


@dataclass
class KeyTable:
    """The tensors of one model under one checkpoint prefix."""
    prefix: str
    keys: list[Key] = field(default_factory=list)

    def add(self, checkpoint: str, shape: tuple[int, ...], init: Init, ours: str | None = None,
            optional: bool = False) -> None:
        self.keys.append(Key(checkpoint, tuple(shape), ours or checkpoint, init, optional))

    def linear(self, name: str, out_f: int, in_f: int, bias: bool = False, ours: str | None = None,
               gain: float = 1.0) -> None:
        """`name.weight` [out, in] (and `name.bias` [out])."""
        ours = ours or name
        self.add(f"{name}.weight", (out_f, in_f), fan_in_init(in_f, gain), f"{ours}.weight")
        if bias:
            self.add(f"{name}.bias", (out_f,), SMALL, f"{ours}.bias")

    def norm(self, name: str, dim: int, bias: bool = False, ours: str | None = None) -> None:
        """`name.weight` [dim] (and `name.bias`) of an RMSNorm or LayerNorm."""
        ours = ours or name
        self.add(f"{name}.weight", (dim,), NORM_W, f"{ours}.weight")
        if bias:
            self.add(f"{name}.bias", (dim,), SMALL, f"{ours}.bias")

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Checkpoint key (without prefix) -> shape."""
        return {k.checkpoint: k.shape for k in self.keys}

    def entries(self) -> Iterator[tuple[str, tuple[int, ...], Init]]:
        """(full on-disk key, shape, init) of every tensor, for the tiny-checkpoint writer."""
        for k in self.keys:
            yield self.prefix + k.checkpoint, k.shape, k.init

    def under(self, sub: str) -> KeyTable:
        """The keys under `prefix + sub` as a table of their own (a model spanning several checkpoint folders,
        e.g. `thinker.model.` and `thinker.lm_head.`, loads each part without reading its siblings)."""
        return KeyTable(self.prefix + sub, [replace(k, checkpoint=k.checkpoint[len(sub):])
                                            for k in self.keys if k.checkpoint.startswith(sub)])

    def load(self, checkpoint: Any, dtype: torch.dtype | None = None, device: str = "cpu") -> dict[str, Any]:
        """Our name -> tensor, every key checked against its shape (all problems reported at once)."""
        tensors = checkpoint.load(self.prefix, self.shapes(), dtype=dtype, device=device,
                                  optional=[k.checkpoint for k in self.keys if k.optional])
        return {k.ours: tensors[k.checkpoint] for k in self.keys if k.checkpoint in tensors}


def build_on_meta(model_cls: type, args: Any, state: dict[str, Any], device: str = "cpu") -> Any:
    """`model_cls(args)` built on the meta device, given `state` (strict, tensors assigned), in eval mode.

    Buffers that are not weights (rotary frequencies, filters computed at init) are restored one way: the
    model's `init_buffers(device)` recomputes them, if it has one.
    """
    import torch

    with torch.device("meta"):
        model = model_cls(args)
    model.load_state_dict(state, strict=True, assign=True)
    if hasattr(model, "init_buffers"):
        model.init_buffers(device)
    return model.eval()
