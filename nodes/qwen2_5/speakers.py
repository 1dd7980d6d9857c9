"""Qwen2.5-Omni voices: `spk_dict.pt` beside the weights, {name: {"bos_token": int, "cond": [1, enc_emb_dim],
"ref_mel": [1, T, mel_dim]}} (reference qwen2.5-omni.md section 6.5). The speaker's bos_token conditions the
Talker (through its Thinker embedding); cond and ref_mel condition token2wav's DiT.

The file is a pickle: it is read with `torch.load(weights_only=True)`, which unpickles tensors and plain
containers only, never code.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...runtime.errors import CheckpointError, UserError, did_you_mean

if TYPE_CHECKING:
    import torch

SPEAKER_FILE = "spk_dict.pt"
DEFAULT_SPEAKER = "Chelsie"


@dataclass(frozen=True)
class Speaker:
    name: str
    bos_token: int  # a Thinker-vocabulary id
    cond: torch.Tensor  # [1, enc_emb_dim] float32
    ref_mel: torch.Tensor  # [1, T, mel_dim] float32


def read_speakers(path: Path, enc_emb_dim: int | None = None, mel_dim: int | None = None) -> dict[str, Speaker]:
    """Every speaker of `path`, checked: a located error names the file, the speaker and the field at fault.
    `enc_emb_dim` / `mel_dim`, when given, are the widths the DiT expects."""
    import pickle

    import torch

    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"'{path}' is missing: Qwen2.5-Omni checkpoints keep their voices in "
                              f"{SPEAKER_FILE} beside the weights") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as e:
        raise CheckpointError(f"'{path}' cannot be read as a torch file of speakers (it is read with "
                              f"weights_only=True, so only tensors and plain values are allowed): {e}") from None
    if not isinstance(raw, dict) or not raw:
        raise CheckpointError(f"'{path}': expected a non-empty mapping of speaker name -> {{bos_token, cond, "
                              f"ref_mel}}, got {type(raw).__name__}{' (empty)' if isinstance(raw, dict) else ''}")
    return {str(name): _speaker(path, str(name), entry, enc_emb_dim, mel_dim) for name, entry in raw.items()}


def _speaker(path: Path, name: str, entry: Any, enc_emb_dim: int | None, mel_dim: int | None) -> Speaker:
    import torch

    where = f"'{path}': speaker '{name}'"
    if not isinstance(entry, dict):
        raise CheckpointError(f"{where}: expected a mapping with bos_token, cond and ref_mel, got "
                              f"{type(entry).__name__}")
    missing = [k for k in ("bos_token", "cond", "ref_mel") if k not in entry]
    if missing:
        raise CheckpointError(f"{where}: missing {', '.join(missing)} (each speaker has bos_token: int, cond: "
                              f"[1, enc_emb_dim], ref_mel: [1, T, mel_dim])")
    bos = entry["bos_token"]
    if torch.is_tensor(bos) and bos.numel() == 1 and not bos.is_floating_point():
        bos = int(bos)
    if isinstance(bos, bool) or not isinstance(bos, int) or bos < 0:
        raise CheckpointError(f"{where}: bos_token must be a non-negative int (a Thinker token id), got {bos!r}")
    cond, ref_mel = entry["cond"], entry["ref_mel"]
    for field, value, rank, last in (("cond", cond, 2, enc_emb_dim), ("ref_mel", ref_mel, 3, mel_dim)):
        shape = "[1, enc_emb_dim]" if rank == 2 else "[1, T, mel_dim]"
        if not torch.is_tensor(value) or not value.is_floating_point():
            raise CheckpointError(f"{where}: {field} must be a floating-point tensor {shape}, got "
                                  f"{type(value).__name__ if not torch.is_tensor(value) else value.dtype}")
        if value.dim() != rank or value.shape[0] != 1 or (last is not None and value.shape[-1] != last) \
                or value.shape[1] == 0:
            want = shape.replace("enc_emb_dim", str(enc_emb_dim or "enc_emb_dim")).replace(
                "mel_dim", str(mel_dim or "mel_dim"))
            raise CheckpointError(f"{where}: {field} has shape {list(value.shape)}, expected {want}")
    return Speaker(name, bos, cond.float(), ref_mel.float())


def pick_speaker(speakers: dict[str, Speaker], name: str | None, path: Path | str) -> Speaker:
    """The speaker named exactly `name`; None: "Chelsie" if present, else the first. A miss is a UserError with
    the nearest name."""
    if name is None:
        return speakers.get(DEFAULT_SPEAKER) or next(iter(speakers.values()))
    if name not in speakers:
        hint = did_you_mean(name, speakers)
        raise UserError(f"unknown speaker '{name}' in '{path}' (names are case-sensitive)"
                        + (f"; {hint}" if hint else ""))
    return speakers[name]


class Voices:
    """A checkpoint's voices (`spk_dict.pt`, checked) and a node's default; `pick` names a run's voice."""

    def __init__(self, checkpoint: Any, default: str | None, enc_emb_dim: int | None = None,
                 mel_dim: int | None = None):
        self.path = checkpoint.path / SPEAKER_FILE
        self.speakers = read_speakers(self.path, enc_emb_dim, mel_dim)
        self.default = pick_speaker(self.speakers, default, self.path).name

    def pick(self, name: str | None) -> str:
        """The voice named `name` (stripped; None: the default), or the UserError of `pick_speaker`."""
        return pick_speaker(self.speakers, self.default if name is None else name.strip(), self.path).name
