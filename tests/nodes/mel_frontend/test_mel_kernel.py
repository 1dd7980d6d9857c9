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
