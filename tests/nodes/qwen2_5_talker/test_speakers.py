"""spk_dict.pt: read with weights_only, its format checked with located errors, exact lookup with a hint."""
import pickle

import pytest
import torch

from omnigraph.nodes.qwen2_5.speakers import pick_speaker, read_speakers
from omnigraph.runtime.errors import CheckpointError, UserError


def voice(bos=151870, cond=(1, 16), mel=(1, 20, 80)):
    return {"bos_token": bos, "cond": torch.randn(cond), "ref_mel": torch.randn(mel)}


def write(tmp_path, value):
    path = tmp_path / "spk_dict.pt"
    torch.save(value, path)
    return path


def test_reads_and_picks(tmp_path):
    path = write(tmp_path, {"Ethan": voice(151871), "Chelsie": voice()})
    speakers = read_speakers(path, enc_emb_dim=16, mel_dim=80)
    assert pick_speaker(speakers, None, path).name == "Chelsie"
    assert pick_speaker(speakers, "Ethan", path).bos_token == 151871
    only = read_speakers(write(tmp_path, {"Zed": voice()}))
    assert pick_speaker(only, None, path).name == "Zed"
    with pytest.raises(UserError, match="unknown speaker 'ethan'.*case-sensitive.*did you mean 'Ethan'"):
        pick_speaker(speakers, "ethan", path)


@pytest.mark.parametrize("value, message", [
    ([1, 2], "expected a non-empty mapping"),
    ({}, "expected a non-empty mapping"),
    ({"A": {"cond": torch.zeros(1, 16)}}, "speaker 'A': missing bos_token, ref_mel"),
    ({"A": voice(bos=1.5)}, "speaker 'A': bos_token must be a non-negative int"),
    ({"A": voice(cond=(16,))}, r"speaker 'A': cond has shape \[16\], expected \[1, 16\]"),
    ({"A": voice(mel=(1, 20, 40))}, r"speaker 'A': ref_mel has shape \[1, 20, 40\], expected \[1, T, 80\]"),
])
def test_bad_format_is_located(tmp_path, value, message):
    path = write(tmp_path, value)
    with pytest.raises(CheckpointError, match=message) as err:
        read_speakers(path, enc_emb_dim=16, mel_dim=80)
    assert str(path) in str(err.value)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_code_in_the_pickle_is_refused(tmp_path):
    path = tmp_path / "spk_dict.pt"
    with open(path, "wb") as f:
        pickle.dump({"A": Evil()}, f, protocol=2)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        read_speakers(path)
    with pytest.raises(CheckpointError, match="is missing"):
        read_speakers(tmp_path / "nope.pt")
