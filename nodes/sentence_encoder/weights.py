"""The key table from a Hugging Face BERT checkpoint (BertModel names) to BertEncoder's, with q/k/v fused."""
from __future__ import annotations

from pathlib import Path

import torch

from ..common.attention import fuse_qkv
from ..common.linear import to_in_out
from .model import BertEncoder

EMBEDDINGS = {
    "word_embeddings.weight": "embeddings.word_embeddings.weight",
    "position_embeddings.weight": "embeddings.position_embeddings.weight",
    "token_type_embeddings.weight": "embeddings.token_type_embeddings.weight",
    "embed_norm.weight": "embeddings.LayerNorm.weight",
    "embed_norm.bias": "embeddings.LayerNorm.bias",
}
LAYER = {  # ours -> theirs, under layers.{i}. / encoder.layer.{i}.; `to_in_out` for matrices
    "wo": "attention.output.dense",
    "attn_norm": "attention.output.LayerNorm",
    "up": "intermediate.dense",
    "down": "output.dense",
    "mlp_norm": "output.LayerNorm",
}
QKV = ("attention.self.query", "attention.self.key", "attention.self.value")


def bert_state_dict(tensors: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    """Checkpoint tensors -> BertEncoder's state dict (a missing key raises KeyError naming it)."""
    out = {ours: tensors[theirs] for ours, theirs in EMBEDDINGS.items()}
    for i in range(n_layers):
        src = f"encoder.layer.{i}."
        out[f"layers.{i}.wqkv.weight"] = fuse_qkv(*(tensors[f"{src}{p}.weight"] for p in QKV))
        out[f"layers.{i}.wqkv.bias"] = fuse_qkv(*(tensors[f"{src}{p}.bias"] for p in QKV))
        for ours, theirs in LAYER.items():
            weight = tensors[f"{src}{theirs}.weight"]
            out[f"layers.{i}.{ours}.weight"] = weight if weight.dim() == 1 else to_in_out(weight)
            out[f"layers.{i}.{ours}.bias"] = tensors[f"{src}{theirs}.bias"]
    return out


def load_bert(model: BertEncoder, weights: Path) -> None:
    from safetensors.torch import load_file

    tensors = load_file(weights)
    model.load_state_dict(bert_state_dict(tensors, model.args.n_layers), strict=True)
