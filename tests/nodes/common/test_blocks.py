"""Shared blocks against plain reference formulas: RMSNorm, rotary tables, attention with a KV cache, MoE."""
import pytest
import torch
import torch.nn.functional as F

from omnigraph.nodes.common import attention
from omnigraph.nodes.common import moe as moe_module
from omnigraph.nodes.common.attention import Attention, causal_attention, decode_attention, fuse_qkv
from omnigraph.nodes.common.decoder import Decoder
from omnigraph.nodes.common.decoder_args import DecoderArgs
from omnigraph.nodes.common.kv_cache import KVCache
from omnigraph.nodes.common.linear import to_in_out
from omnigraph.nodes.common.moe import (ALL_EXPERTS_MAX_TOKENS, MoE, SwiGLU, fuse_gate_up, grouped_mm_serves,
                                       stack_experts)
from omnigraph.nodes.common.packed_head import onednn_serves
from omnigraph.nodes.common.rmsnorm import RMSNorm
from omnigraph.nodes.common.rope import apply_rope, inv_freq, mrope_axis_map, mrope_cos_sin, rope_cos_sin


def test_rmsnorm_computes_in_float32_and_casts_back():
    torch.manual_seed(0)
    norm = RMSNorm(8, eps=1e-5)
    norm.weight.data.uniform_(0.5, 1.5)
    x = torch.randn(3, 8).bfloat16()
    x32 = x.float()
    want = norm.weight * (x32 / torch.sqrt(x32.pow(2).mean(-1, keepdim=True) + 1e-5)).bfloat16()
    torch.testing.assert_close(norm(x), want, atol=0, rtol=0)


def test_interleaved_mrope_axis_map_of_the_released_model():
    axis = mrope_axis_map(128, [24, 20, 20])
    t = set(torch.nonzero(axis == 0).flatten().tolist())
    assert t == set(range(0, 60, 3)) | set(range(60, 64))
    assert torch.nonzero(axis == 1).flatten().tolist() == list(range(1, 60, 3))
    assert torch.nonzero(axis == 2).flatten().tolist() == list(range(2, 60, 3))
    with pytest.raises(ValueError, match="sum to head_dim/2"):
        mrope_axis_map(32, [4, 6, 5])


def test_mrope_takes_each_frequency_from_its_axis():
    freqs = inv_freq(24, 1e6)
    axis = mrope_axis_map(24, [2, 5, 5])
    pos = torch.tensor([[3.0, 7.5], [11.0, 2.0], [5.0, 9.0]])  # [3, S]
    cos, sin = mrope_cos_sin(pos, freqs, axis)
    angles = pos.T[:, axis] * freqs  # [S, F]: position of each frequency's axis
    torch.testing.assert_close(cos, torch.cat([angles, angles], -1).cos())
    torch.testing.assert_close(sin, torch.cat([angles, angles], -1).sin())
    same = torch.tensor([4.0, 9.0]).expand(3, 2)  # equal axes: plain 1D rope
    torch.testing.assert_close(mrope_cos_sin(same, freqs, axis)[0], rope_cos_sin(same[0], freqs)[0], atol=0, rtol=0)


def test_apply_rope_is_x_cos_plus_rotate_half_x_sin_for_broadcast_angles():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 3, 8, generator=g)[..., ::2, :]  # [B, T, heads, D], a strided view
    cos, sin = torch.randn(2, 5, 1, 8, generator=g), torch.randn(2, 5, 1, 8, generator=g)
    rotate_half = torch.cat([-x[..., 4:], x[..., :4]], -1)
    torch.testing.assert_close(apply_rope(x, cos, sin), x * cos + rotate_half * sin, atol=1e-6, rtol=1e-6)
    eye = torch.eye(8)  # an x smaller than the angles (decoder.rotations): one rotation matrix per angle row
    rotation = apply_rope(eye, cos[:, :, 0, None], sin[:, :, 0, None])  # [B, T, D, D]
    torch.testing.assert_close(x @ rotation, apply_rope(x, cos, sin), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("before", [0, 3, 20, 21, 30])
def test_causal_attention_in_query_blocks_matches_one_masked_softmax(monkeypatch, before):
    """Blocks of 8 queries (a prompt's first chunk, or a chunk after fewer earlier keys than its own) or one
    SDPA call: query i sees the `before` earlier keys and the new ones up to its own."""
    monkeypatch.setattr(attention, "QUERY_BLOCK", 8)
    g = torch.Generator().manual_seed(before)
    H, K, T, D = 6, 2, 21, 16
    q = torch.randn(1, T, H, D, generator=g).transpose(1, 2)  # as Attention._qkv hands it over
    keys, values = (torch.randn(1, K, before + T, D, generator=g) for _ in range(2))
    visible = torch.ones(T, before + T, dtype=torch.bool).tril(before)
    scores = (q @ keys.repeat_interleave(H // K, 1).transpose(-1, -2)) * D ** -0.5
    want = scores.masked_fill(~visible, float("-inf")).softmax(-1) @ values.repeat_interleave(H // K, 1)
    got = causal_attention(q, keys, values, visible if before else None)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert got.transpose(1, 2).is_contiguous()  # [B, T, H, D] memory: the output projection reads it as is


def reference_attention(attn: Attention, x: torch.Tensor, cos, sin) -> torch.Tensor:
    """Separate q/k/v, repeated kv heads, explicit causal mask, softmax(q k^T / sqrt(D)) v."""
    B, T, _ = x.shape
    H, K, D = attn.n_heads, attn.n_kv_heads, attn.head_dim
    w = attn.wqkv.weight.T  # [(H + 2K) * D, C] as in a checkpoint
    q = (x @ w[:H * D].T).view(B, T, H, D)
    k = (x @ w[H * D:(H + K) * D].T).view(B, T, K, D)
    v = (x @ w[(H + K) * D:].T).view(B, T, K, D)
    q, k = attn.q_norm(q).transpose(1, 2), attn.k_norm(k).transpose(1, 2)
    v = v.transpose(1, 2)
    rot = lambda t: torch.cat([-t[..., D // 2:], t[..., :D // 2]], -1)  # noqa: E731
    q, k = q * cos[:, None] + rot(q) * sin[:, None], k * cos[:, None] + rot(k) * sin[:, None]
    k, v = k.repeat_interleave(H // K, 1), v.repeat_interleave(H // K, 1)
    scores = q @ k.transpose(-1, -2) / D ** 0.5
    scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    return (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H * D) @ attn.wo.weight


@pytest.mark.parametrize("heads,kv_heads,head_dim", [(6, 3, 24), (8, 1, 16), (4, 4, 40)])
def test_attention_prefill_and_cached_decode_match_reference(heads, kv_heads, head_dim):
    torch.manual_seed(1)
    B, T, C = 2, 9, 40
    attn = Attention(C, heads, kv_heads, head_dim, eps=1e-6)
    for p in attn.parameters():
        p.data.normal_(0, 0.3)
    x = torch.randn(B, T, C)
    pos = torch.rand(3, B, T).mul(20).floor()
    freqs = inv_freq(head_dim, 1e4)
    axis = mrope_axis_map(head_dim, [head_dim // 2 - 2 * (head_dim // 6), head_dim // 6, head_dim // 6])
    cos, sin = mrope_cos_sin(pos, freqs, axis)
    want = reference_attention(attn, x, cos, sin)
    with torch.inference_mode():
        torch.testing.assert_close(attn(x, cos, sin), want, atol=1e-5, rtol=1e-5)
        cache = KVCache(1, kv_heads, head_dim, torch.float32, "cpu")
        slots = [cache.add(T) for _ in range(B)]

        def step(rows_of: list[int], start: list[int], count: int) -> torch.Tensor:
            """Run positions start[i]..+count of sequence rows_of[i] through the cache (one call)."""
            rows = cache.rows([slots[b] for b in rows_of], count)
            part = lambda t: torch.cat([t[b:b + 1, s:s + count] for b, s in zip(rows_of, start)])  # noqa: E731
            out = attn(part(x), part(cos), part(sin), cache, 0, rows)
            cache.commit(rows)
            return out

        got = [[step([0], [0], 5), step([0], [5], 2)], [step([1], [0], 6)]]  # a prefill continued; ragged lengths
        for t in range(2):  # both rows in one decode call, at different positions
            both = step([0, 1], [7 + t, 6 + t], 1)
            got[0].append(both[:1])
            got[1].append(both[1:])
        got[1].append(step([1], [8], 1))
        assert cache.lengths[:2] == [T, T]
        torch.testing.assert_close(torch.cat([torch.cat(g, 1) for g in got]), want, atol=1e-5, rtol=1e-5)
        with pytest.raises(RuntimeError, match="KV cache overflow"):
            cache.rows([slots[0]], 1)


@pytest.mark.parametrize("qk_norm,bias", [(True, False), (False, True)])
def test_prefill_of_the_last_position_only_matches_it_and_fills_the_same_cache(qk_norm, bias):
    torch.manual_seed(4)
    a = DecoderArgs(vocab_size=10, dim=24, n_layers=3, n_heads=4, n_kv_heads=2, head_dim=8, rms_eps=1e-6,
                    rope_theta=1e4, mrope_section=(2, 1, 1), n_experts=4, top_k=2, moe_hidden=6, norm_topk_prob=True,
                    dense_hidden=10, sparse=(True, False, True), attention_bias=bias)
    model = Decoder(a, qk_norm=qk_norm)
    for p in model.parameters():
        p.data.normal_(0, 0.3)
    T = 11
    x = torch.randn(1, T, a.dim)
    cos, sin = model.cos_sin(torch.rand(3, 1, T).mul(20).floor(), x.dtype)
    with torch.inference_mode():
        caches, outs = [], []
        for chunks, last_only in (((T,), False), ((T,), True), ((6, 5), True)):  # one call, or a continued prefill
            cache = model.new_cache()
            slot, start = cache.add(T), 0
            for n in chunks:
                part = slice(start, start + n)
                out = model.prefill(x[:, part], cos[:, part], sin[:, part], cache, cache.rows([slot], n),
                                    last_only=last_only)
                start += n
            caches.append(cache)
            outs.append(out)
        whole, *last = outs
        assert [o.shape[1] for o in last] == [1, 1]
        for cache, out in zip(caches[1:], last):
            torch.testing.assert_close(out, whole[:, -1:], atol=1e-5, rtol=1e-5)
            for layer in range(a.n_layers):
                for got, want in ((cache.k, caches[0].k), (cache.v, caches[0].v)):
                    torch.testing.assert_close(got[layer][:, :, :T], want[layer][:, :, :T], atol=1e-5, rtol=1e-5)


def dense_moe_reference(moe: MoE, x: torch.Tensor) -> torch.Tensor:
    """Every expert on every token, weighted by the renormalised top-k softmax (zero elsewhere)."""
    probs = (x @ moe.router.weight).softmax(-1)
    top, idx = probs.topk(moe.top_k, -1)
    if moe.norm_topk_prob:
        top = top / top.sum(-1, keepdim=True)
    gates = torch.zeros_like(probs).scatter(-1, idx, top)  # [N, E]
    gate, up = torch.einsum("nc,eci->eni", x, moe.w_gate_up).chunk(2, -1)
    ys = torch.einsum("eni,eic->enc", F.silu(gate) * up, moe.w_down)  # [E, N, C]
    out = torch.einsum("ne,enc->nc", gates, ys)
    if moe.shared is not None:
        out = out + torch.sigmoid(x @ moe.shared_gate.weight) * moe.shared(x)
    return out


@pytest.mark.parametrize("experts,top_k,norm,shared", [(8, 2, True, 0), (16, 4, False, 0), (6, 3, True, 24)])
def test_moe_grouped_and_single_token_paths_match_dense_reference(experts, top_k, norm, shared):
    torch.manual_seed(2)
    moe = MoE(20, experts, top_k, 12, norm, shared_hidden=shared)
    for p in moe.parameters():
        p.data.normal_(0, 0.5)
    x = torch.randn(2, 13, 20)
    want = dense_moe_reference(moe, x.reshape(-1, 20)).view_as(x)
    with torch.inference_mode():
        torch.testing.assert_close(moe(x), want, atol=1e-5, rtol=1e-5)
        one = torch.cat([moe(x[:, t:t + 1]) for t in range(13)], 1)  # one token at a time (decode path)
        torch.testing.assert_close(one, want, atol=1e-5, rtol=1e-5)
        paths = ["_expert_by_expert", "_grouped"] + ["_grouped_mm"] * grouped_mm_serves(moe)  # (its off-CPU use)
        for path in paths:  # long prefills on CPU, everything else, many tokens where torch._grouped_mm serves
            flat = x.reshape(-1, 20)
            got = getattr(moe, path)(flat, *moe.route(flat))
            if moe.shared is not None:
                got = got + torch.sigmoid(moe.shared_gate(flat)) * moe.shared(flat)
            torch.testing.assert_close(got.view_as(x), want, atol=1e-5, rtol=1e-5)
        for n in (1, 5):  # the gather + bmm variant used off-CPU for few tokens, run here directly
            flat = x[0, :n]
            w, e = moe.route(flat)
            got = moe._gathered(flat, w, e)
            if moe.shared is not None:
                got = got + torch.sigmoid(moe.shared_gate(flat)) * moe.shared(flat)
            torch.testing.assert_close(got, want[0, :n], atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not hasattr(torch, "_grouped_mm"), reason="this torch has no torch._grouped_mm")
def test_grouped_mm_serves_aligned_weights_only_and_is_kept_off_the_cpu():
    aligned, odd = MoE(20, 8, 2, 12, True), MoE(5, 8, 2, 3, True)  # rows of 80 / 20 bytes (kernels want 16k)
    for moe in (aligned, odd):
        for p in moe.parameters():
            p.data.normal_(0, 0.5)
        moe.prepare()
        assert not moe._grouped_mm_serves  # CPU keeps its measured paths
    assert grouped_mm_serves(aligned) and not grouped_mm_serves(odd)


def test_moe_runs_long_prefills_on_cpu_expert_by_expert(monkeypatch):
    monkeypatch.setattr(moe_module, "EXPERT_BY_EXPERT_MIN_TOKENS", 20)
    torch.manual_seed(6)
    moe = MoE(20, 8, 2, 12, True)
    for p in moe.parameters():
        p.data.normal_(0, 0.5)
    ran = []
    for path in ("_expert_by_expert", "_grouped"):
        monkeypatch.setattr(moe, path, lambda *a, f=getattr(moe, path), name=path: ran.append(name) or f(*a))
    x = torch.randn(20, 20)
    want = dense_moe_reference(moe, x)
    with torch.inference_mode():
        torch.testing.assert_close(moe(x[:19]), want[:19], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(moe(x), want, atol=1e-5, rtol=1e-5)
    assert ran == ["_grouped", "_expert_by_expert"]


@pytest.mark.parametrize("experts,top_k,shared,fewest", [(16, 4, 0, 3), (8, 1, 24, 6)])
def test_moe_few_token_steps_run_all_experts_packed_and_match_dense_reference(experts, top_k, shared, fewest,
                                                                              monkeypatch):
    torch.manual_seed(3)
    moe = MoE(20, experts, top_k, 12, True, shared_hidden=shared)
    for p in moe.parameters():
        p.data.normal_(0, 0.5)
    moe.prepare()
    if not onednn_serves(moe.w_gate_up):
        pytest.skip("this torch has no oneDNN: few tokens run the grouped path")
    assert moe._all[2] == fewest  # the fewest tokens expected to use half the experts
    ran = []
    all_experts = moe._all_experts
    monkeypatch.setattr(moe, "_all_experts", lambda *a: ran.append(a[0].shape[0]) or all_experts(*a))
    x = torch.randn(ALL_EXPERTS_MAX_TOKENS + 1, 20)
    want = dense_moe_reference(moe, x)
    with torch.inference_mode():
        for n in range(1, ALL_EXPERTS_MAX_TOKENS + 2):
            torch.testing.assert_close(moe(x[:n]), want[:n], atol=1e-5, rtol=1e-5)
    assert ran == list(range(fewest, ALL_EXPERTS_MAX_TOKENS + 1))


@pytest.mark.parametrize("heads,kv_heads", [(8, 2), (4, 4), (6, 1)])
def test_decode_attention_of_ragged_rows_matches_sdpa(heads, kv_heads):
    """decode_attention takes q already times D**-0.5 (the decoder folds the scale into a weight)."""
    g = torch.Generator().manual_seed(heads)
    B, L, D = 5, 11, 16
    q = torch.randn(B, heads, D, generator=g)
    keys, values = (torch.randn(B, kv_heads, 2 * L, D, generator=g)[:, :, :L] for _ in range(2))  # cache views
    lengths = torch.tensor([11, 3, 7, 1, 11])
    mask = (torch.arange(L) < lengths[:, None])[:, None, None]  # [B, 1, 1, L]
    for m in (mask, None):
        want = F.scaled_dot_product_attention(q[:, :, None], keys, values, attn_mask=m, enable_gqa=True)
        got = decode_attention(q * D ** -0.5, keys, values, m)
        torch.testing.assert_close(got, want.reshape(B, -1), atol=1e-6, rtol=1e-5)


def test_swiglu_is_down_of_silu_gate_times_up():
    torch.manual_seed(3)
    mlp = SwiGLU(10, 7)
    for p in mlp.parameters():  # weights are allocated uninitialised (loaders overwrite them)
        p.data.normal_(0, 0.5)
    x = torch.randn(4, 10)
    gate, up = mlp.w_gate_up.weight[:, :7], mlp.w_gate_up.weight[:, 7:]
    torch.testing.assert_close(mlp(x), (F.silu(x @ gate) * (x @ up)) @ mlp.w_down.weight)


def test_checkpoint_layouts_are_converted_to_in_out():
    q, k, v = torch.randn(6, 4), torch.randn(2, 4), torch.randn(2, 4)
    fused = fuse_qkv(q, k, v)
    assert fused.shape == (4, 10) and fused.is_contiguous() and torch.equal(fused[:, 6:8], k.T)
    assert torch.equal(fuse_qkv(q[:, 0], k[:, 0], v[:, 0]), torch.cat([q[:, 0], k[:, 0], v[:, 0]]))  # biases
    gate, up, down = [torch.randn(3, 5)] * 2, [torch.randn(3, 5)] * 2, [torch.randn(5, 3)] * 2
    gu, d = stack_experts(gate, up, down)
    assert gu.shape == (2, 5, 6) and d.shape == (2, 3, 5)
    assert torch.equal(gu[1, :, 3:], up[1].T) and torch.equal(d[0], down[0].T)
    assert torch.equal(fuse_gate_up(gate[0], up[0]), gu[0]) and torch.equal(to_in_out(down[0]), d[0])
