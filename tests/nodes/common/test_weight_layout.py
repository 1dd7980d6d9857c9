"""Weights' memory layout per device (linear.py `for_device`), as the decoder applies it at load."""
import torch

import omnigraph.nodes.common.decoder as decoder_module
import omnigraph.nodes.common.linear as linear_module
from omnigraph.nodes.common.decoder import Decoder
from omnigraph.nodes.common.decoder_args import DecoderArgs
from omnigraph.nodes.common.linear import all_experts_for_decode_rows, for_decode_rows, for_device
from omnigraph.nodes.common.packed_head import onednn_serves


def is_out_in(w: torch.Tensor) -> bool:
    """[..., in, out] values in contiguous [..., out, in] memory."""
    return w.transpose(-1, -2).is_contiguous() and not w.is_contiguous()


def test_large_narrowing_matrices_are_stored_out_in_on_cpu_and_others_keep_in_out():
    narrow, stack, wide, square = (torch.randn(1024, 512), torch.randn(4, 512, 256), torch.randn(512, 1024),
                                   torch.randn(1024, 1024))
    for w in (narrow, stack):
        laid = for_device(w)
        assert laid.shape == w.shape and is_out_in(laid)
        assert torch.equal(laid, w)
        assert for_device(laid).data_ptr() == laid.data_ptr()  # already laid out: nothing copied
    for w in (wide, square, torch.randn(8), torch.randn(512, 256)):  # the last: narrowing but cache-sized
        assert for_device(w) is w
    x = torch.randn(1, 1024)
    torch.testing.assert_close(x @ for_device(narrow), x @ narrow, atol=1e-4, rtol=1e-5)  # summation order only


def small_decoder() -> Decoder:
    """Two layers (MoE, dense); wo [64, 32] and the experts' gate/up [32, 24] narrow, wqkv and down widen."""
    args = DecoderArgs(vocab_size=16, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=16, rms_eps=1e-6,
                       rope_theta=1e4, mrope_section=(2, 3, 3), n_experts=4, top_k=2, moe_hidden=12,
                       norm_topk_prob=True, dense_hidden=40, sparse=(True, False))
    torch.manual_seed(0)
    model = Decoder(args)
    for p in model.parameters():
        p.data.normal_(0, 0.2)
    return model


@torch.inference_mode()
def decode_steps(model: Decoder, steps: int = 4) -> torch.Tensor:
    cache = model.new_cache()
    slot = cache.add(steps)
    torch.manual_seed(1)
    out = []
    for step in range(steps):
        x = torch.randn(1, model.decoder_args.dim)
        out.append(model.decode(x, model.rotations(torch.tensor([float(step)])), cache, cache.rows([slot], 1)))
    return torch.cat(out)


def test_decoder_prepare_lays_out_layer_weights_and_decode_is_unchanged(monkeypatch):
    monkeypatch.setattr(linear_module, "MIN_ELEMENTS", 0)  # lay out even this small model's weights
    model = small_decoder()
    model.prepare()
    moe, dense = model.layers[0], model.layers[1]
    assert is_out_in(moe.attn.wo.weight) and is_out_in(moe.mlp.w_gate_up) and is_out_in(moe.mlp.router.weight)
    assert moe.attn.wqkv.weight.is_contiguous() and moe.mlp.w_down.is_contiguous()
    assert is_out_in(dense.mlp.w_down.weight) and dense.mlp.w_gate_up.weight.is_contiguous()
    laid_out = decode_steps(model)

    monkeypatch.setattr(decoder_module, "for_device", lambda w: w)
    before = small_decoder()
    before.prepare()
    assert before.layers[0].attn.wo.weight.is_contiguous()
    torch.testing.assert_close(laid_out, decode_steps(before), atol=1e-5, rtol=1e-5)


@torch.inference_mode()
def test_decode_batches_multiply_by_packed_copies_and_match_each_row_alone(monkeypatch):
    monkeypatch.setattr(linear_module, "MIN_ELEMENTS", 0)  # pack even this small model's layer matrices
    model = small_decoder()
    model.prepare()
    fused = model._fusion()[0]
    assert all(m.uses_onednn == onednn_serves(m.weight) for layer in fused for m in (layer[0], layer[3]))
    C, steps = model.decoder_args.dim, 3
    for B in (2, 3, 5):  # 2 and 3 rows are padded to 4
        torch.manual_seed(B)
        xs = torch.randn(steps, B, C)
        cache = model.new_cache()
        slots = [cache.add(steps) for _ in range(B)]
        together = [model.decode(xs[t], model.rotations(torch.full((B,), float(t))), cache, cache.rows(slots, 1))
                    for t in range(steps)]
        for b in range(B):
            cache = model.new_cache()
            slot = cache.add(steps)
            for t in range(steps):
                alone = model.decode(xs[t, b:b + 1], model.rotations(torch.tensor([float(t)])), cache,
                                     cache.rows([slot], 1))
                torch.testing.assert_close(together[t][b:b + 1], alone, atol=1e-5, rtol=1e-5)


def test_packed_copies_only_for_matrices_and_stacks_within_the_memory_cap(monkeypatch):
    monkeypatch.setattr(linear_module, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(linear_module, "PACKED_MAX_ELEMENTS", 64 * 48)
    within, over = torch.randn(64, 48), torch.randn(64, 49)
    assert for_decode_rows(within).uses_onednn == onednn_serves(within)
    assert not for_decode_rows(over).uses_onednn and for_decode_rows(over).packed is None
    x = torch.randn(5, 64)
    torch.testing.assert_close(for_decode_rows(over)(x), x @ over)
    assert all_experts_for_decode_rows(torch.randn(4, 16, 50), torch.randn(4, 25, 16)) is None  # 3200 elements
    products = all_experts_for_decode_rows(torch.randn(4, 16, 48), torch.randn(4, 24, 16))
    assert (products is not None) == onednn_serves(within)
