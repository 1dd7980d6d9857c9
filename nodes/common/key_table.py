"""One weight-key table per model: every checkpoint tensor's on-disk name, shape, our name and random init.

A model's `weights.py` builds its table from its args (or config.json section); the loader and the
tiny-checkpoint writer both read that one table, so a key or shape is written once:

    table = KeyTable("thinker.visual.")
    table.linear("blocks.0.attn.qkv", 3 * D, D, ours="blocks.0.qkv")
    state = table.load(checkpoint, dtype=dtype, device=device)   # our name -> tensor, shapes checked
    entries = table.entries()                                    # (full key, shape, init) for the writer

A fusion (stacking experts, splitting qkv, reshaping a conv) is done by the model's loader on the returned
state; `Key.ours` may repeat a prefix shared by the tensors a fusion combines.

A model whose tensors sit under several prefixes lists them as `scopes` (each loaded on its own, so tensors of
other models between them are not "unexpected"); a tensor another model's table writes is `borrowed`.
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
    borrowed: bool = False    # read by this model, written by another model's table


@dataclass
class KeyTable:
    """The tensors of one model under one checkpoint prefix (loaded per scope: sub-prefixes of it)."""
    prefix: str
    keys: list[Key] = field(default_factory=list)
    scopes: tuple[str, ...] = ("",)

    def add(self, checkpoint: str, shape: tuple[int, ...], init: Init, ours: str | None = None,
            optional: bool = False, borrowed: bool = False) -> None:
        self.keys.append(Key(checkpoint, tuple(shape), ours or checkpoint, init, optional, borrowed))

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
        """(full on-disk key, shape, init) of every tensor this table writes, for the tiny-checkpoint writer."""
        for k in self.keys:
            if not k.borrowed:
                yield self.prefix + k.checkpoint, k.shape, k.init

    def under(self, sub: str) -> KeyTable:
        """The keys under `prefix + sub` as a table of their own (a model spanning several checkpoint folders,
        e.g. `thinker.model.` and `thinker.lm_head.`, loads each part without reading its siblings)."""
        return KeyTable(self.prefix + sub, [replace(k, checkpoint=k.checkpoint[len(sub):])
                                            for k in self.keys if k.checkpoint.startswith(sub)])

    def load(self, checkpoint: Any, dtype: torch.dtype | None = None, device: str = "cpu") -> dict[str, Any]:
        """Our name -> tensor, every key checked against its shape (all problems reported at once)."""
        state: dict[str, Any] = {}
        for scope in self.scopes:
            keys = [k for k in self.keys if k.checkpoint.startswith(scope)]
            tensors = checkpoint.load(self.prefix + scope, {k.checkpoint[len(scope):]: k.shape for k in keys},
                                      dtype=dtype, device=device,
                                      optional=[k.checkpoint[len(scope):] for k in keys if k.optional])
            state |= {k.ours: tensors[k.checkpoint[len(scope):]] for k in keys
                      if k.checkpoint[len(scope):] in tensors}
        return state


def build_on_meta(model_cls: type, args: Any, state: dict[str, Any], device: str = "cpu") -> Any:
    """`model_cls(args)` built with its parameters on the meta device and no init math
    (runtime/checkpoint_meta.py), given `state` (strict, tensors assigned), in eval mode.

    Buffers that are not weights (rotary frequencies, filters computed at init) are computed on the CPU by the
    constructor; on a real device the model's `init_buffers(device)`, if it has one, puts them there (and
    prepares derived weights); on meta (a checkpoint check) they are only moved, so no arithmetic runs on meta.
    """
    from ...runtime.checkpoint_meta import empty_model

    model = empty_model(model_cls, args)
    model.load_state_dict(state, strict=True, assign=True)
    if device == "meta":
        model.to(device)
    elif hasattr(model, "init_buffers"):
        model.init_buffers(device)
    return model.eval()
