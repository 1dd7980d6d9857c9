"""A Llama-style GGUF file (llama.cpp's format) as DecoderArgs and our state dict: every tensor dequantised to
float32 with the `gguf` package, q/k projection rows un-permuted back to Hugging Face's rotate-half layout (as
transformers' GGUF loader does), q/k/v and gate/up fused. The key table maps GGUF names to ours.
`open_gguf` keeps the last files read (parsed and dequantised) for the process: nodes that load the same file
share that work.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...runtime.errors import UserError
from ..common.attention import fuse_qkv
from ..common.decoder_args import DecoderArgs
from ..common.extras import import_extra
from ..common.linear import to_in_out
from ..common.moe import fuse_gate_up

LAYER_KEYS = {  # ours (under layers.{i}.) -> GGUF (under blk.{i}.); matrices are stored [out, in]
    "attn_norm.weight": "attn_norm.weight",
    "attn.wo.weight": "attn_output.weight",
    "mlp_norm.weight": "ffn_norm.weight",
    "mlp.w_down.weight": "ffn_down.weight",
}
FUSED_KEYS = {"attn.wqkv.weight": ("attn_q.weight", "attn_k.weight", "attn_v.weight"),
              "mlp.w_gate_up.weight": ("ffn_gate.weight", "ffn_up.weight")}


def open_gguf(path: Path, who: str) -> GGUFModel:
    """The GGUF file at `path` (read once per process while it is unchanged)."""
    import_extra("gguf", "llm", who)
    if not path.is_file():
        raise UserError(f"{who}: GGUF file '{path}' does not exist")
    stat = path.stat()
    try:
        return _open(path.resolve(), stat.st_size, stat.st_mtime_ns)
    except UserError as exc:
        raise UserError(f"{who}: {exc}") from None


@functools.lru_cache(maxsize=2)
def _open(path: Path, size: int, mtime_ns: int) -> GGUFModel:
    return GGUFModel(path)


class GGUFModel:
    """The metadata and tensors of one GGUF file (tensors dequantised on demand)."""

    def __init__(self, path: Path):
        import gguf

        try:
            self.reader = gguf.GGUFReader(str(path))
        except (ValueError, OSError) as exc:
            raise UserError(f"'{path}' is not a readable GGUF file ({exc})") from None
        self.path, self._dequantize = path, gguf.dequantize
        self.arch = self.field("general.architecture")
        if self.arch != "llama":
            raise UserError(f"'{path}' holds a '{self.arch}' model; only Llama-style models are supported")

    def field(self, key: str, default: Any = ...) -> Any:
        f = self.reader.fields.get(key)
        if f is None:
            if default is ...:
                raise UserError(f"GGUF file '{self.path}' has no '{key}' field")
            return default
        return f.contents()

    def args(self) -> DecoderArgs:
        a, n_layers = f"{self.arch}.", self.field("llama.block_count")
        heads = self.field(a + "attention.head_count")
        dim = self.field(a + "embedding_length")
        vocab = self.field(a + "vocab_size", None) or len(self.field("tokenizer.ggml.tokens"))
        return DecoderArgs(vocab_size=vocab, dim=dim, n_layers=n_layers, n_heads=heads,
                           n_kv_heads=self.field(a + "attention.head_count_kv", heads),
                           head_dim=self.field(a + "rope.dimension_count", dim // heads),
                           rms_eps=float(self.field(a + "attention.layer_norm_rms_epsilon")),
                           rope_theta=float(self.field(a + "rope.freq_base", 10000.0)), mrope_section=(0, 0, 0),
                           n_experts=0, top_k=0, moe_hidden=0, norm_topk_prob=False,
                           dense_hidden=self.field(a + "feed_forward_length"), sparse=(False,) * n_layers,
                           max_positions=self.field(a + "context_length", None))

    @functools.cached_property
    def tensors(self) -> dict[str, np.ndarray]:
        """Every tensor, dequantised to float32 [rows, columns] (GGUF shapes are listed the other way round);
        read-only: state_dict copies what it changes, and load_state_dict copies the rest."""
        return {t.name: np.require(self._dequantize(t.data, t.tensor_type), np.float32, ["C", "W"])
                .reshape(tuple(int(d) for d in reversed(t.shape))) for t in self.reader.tensors}


def unpermute(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """llama.cpp's q/k row order (interleaved rotary pairs) -> Hugging Face's (rotate-half halves)."""
    dim = weight.shape[0] // n_heads // 2
    return weight.reshape(n_heads, dim, 2, *weight.shape[1:]).swapaxes(2, 1).reshape(weight.shape)


def state_dict(tensors: dict[str, np.ndarray], args: DecoderArgs) -> dict[str, torch.Tensor]:
    """GGUF tensors -> TextLM's state dict (the output head is tied to the embeddings when the file has none)."""
    t = {k: torch.from_numpy(v) for k, v in tensors.items()}
    out = {"embed_tokens.weight": t["token_embd.weight"], "norm.weight": t["output_norm.weight"]}
    if "output.weight" in t:
        out["lm_head"] = t["output.weight"]
    for i in range(args.n_layers):
        src = f"blk.{i}."
        for ours, theirs in LAYER_KEYS.items():
            w = t[src + theirs]
            out[f"layers.{i}.{ours}"] = w if w.dim() == 1 else to_in_out(w)
        q = torch.from_numpy(unpermute(tensors[src + "attn_q.weight"], args.n_heads))
        k = torch.from_numpy(unpermute(tensors[src + "attn_k.weight"], args.n_kv_heads))
        out[f"layers.{i}.attn.wqkv.weight"] = fuse_qkv(q, k, t[src + "attn_v.weight"])
        out[f"layers.{i}.mlp.w_gate_up.weight"] = fuse_gate_up(t[src + "ffn_gate.weight"], t[src + "ffn_up.weight"])
    return out
