"""The log-mel kernel: the CPU fast path (blocks of frames) equals the batched reference."""
from __future__ import annotations

import pytest
import torch

from omnigraph.kernels.mel import cpu, log_mel, reference
from omnigraph.nodes.mel_frontend.model import mel_filterbank


@pytest.mark.parametrize("n_fft,hop,n_mels,lengths", [
    (400, 160, 128, [480000, 16050, 999]),   # 3000 frames: many blocks and a partial last block
    (400, 160, 128, [cpu.BLOCK * 160]),      # exactly one block
    (400, 160, 80, [201, 5000]),             # one frame; fewer mels
    (512, 128, 64, [7777]),                  # another FFT size and hop
])
def test_fast_path_equals_reference(n_fft, hop, n_mels, lengths):
    g = torch.Generator().manual_seed(len(lengths))
    wav = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        wav[i, :n] = 0.3 * torch.randn(n, generator=g)
    window = torch.hann_window(n_fft)
    filters = torch.from_numpy(mel_filterbank(n_mels, n_fft, 16000, 0.0, 8000.0)).float()
    ref = reference.log_mel(wav, window, filters, hop)
    fast = cpu.log_mel(wav, window, filters, hop)
    assert ref.shape == fast.shape == (len(lengths), n_mels, max(lengths) // hop)
    torch.testing.assert_close(fast, ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(log_mel(wav, window, filters, hop), fast, atol=0, rtol=0)  # CPU picks the fast path


@pytest.mark.parametrize("path", [reference.log_mel, cpu.log_mel])
def test_floor_frames_make_each_row_its_own_example(path):
    """Rows built by prompt_rows inside a longer batch equal each clip alone on their first floor_frames frames,
    also when the frames past them (the batch's padding) are louder than the clip's own."""
    from omnigraph.nodes.mel_frontend.model import prompt_rows

    g = torch.Generator().manual_seed(3)
    burst = 0.01 * torch.randn(16000, generator=g)
    burst[-100:] = 100.0  # frame 100 (past the clip's own 100 frames) sees the burst and its reflection
    clips = [burst, 0.3 * torch.randn(40_000, generator=g), 0.3 * torch.randn(16_100, generator=g)]
    window = torch.hann_window(400)
    filters = torch.from_numpy(mel_filterbank(128, 400, 16000, 0.0, 8000.0)).float()
    wav, own = prompt_rows([[c] for c in clips], 400, 160, "cpu")
    assert own.tolist() == [100, 250, 100]
    batched = path(wav, window, filters, 160, own)
    for i, clip in enumerate(clips):
        alone = path(clip[None], window, filters, 160)[0]
        torch.testing.assert_close(batched[i, :, :own[i]], alone, atol=1e-5, rtol=0)
    unmasked = reference.log_mel(wav, window, filters, 160)
    assert (unmasked[0, :, :100] - batched[0, :, :100]).abs().max() > 0.1  # the floor mask mattered here


def test_reflect_pad_is_torchs():
    import torch.nn.functional as F

    for rows, n in [(1, 201), (3, 5000), (2, 401)]:
        wav = torch.randn(rows, n, generator=torch.Generator().manual_seed(n))
        assert torch.equal(cpu.reflect_pad(wav, 200), F.pad(wav[:, None], (200, 200), mode="reflect")[:, 0])
