"""Thinker prefill speed on a 1000-token prompt: omnigraph vs transformers vs the compute bound.

    python examples/bench/thinker_prefill.py [--tokens 1000] [--dtype float32] [--device cpu] [--checkpoint DIR]

The checkpoint is the `small` one of thinker_decode.py (built with transformers unless --checkpoint is given).
omnigraph's prefill fills the KV cache and computes logits for the last position only (what generation
needs). transformers' thinker forward always computes logits at every position, which is costly with a
152064-token vocabulary, so it is timed twice: the whole forward, and (the fair comparison) its text model
with the KV cache plus lm_head on the last position. The bound: measured GEMM FLOP/s over the active FLOPs
(attention projections and scores, router, top-k experts; 2 per multiply-add). Target: >= 1.5x transformers.
"""
from __future__ import annotations

import argparse
import time

import torch
from thinker_decode import add_common_args, load_for, sync


def gemm_flops(dtype: torch.dtype, device: str, n: int = 2048, repeats: int = 5) -> float:
    a, b = (torch.randn(n, n, dtype=dtype, device=device) for _ in range(2))
    a @ b
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best


def prefill_flops(args, tokens: int) -> float:
    """Active FLOPs of a causal prefill of `tokens` tokens (lm_head on the last position)."""
    C, D, H, K = args.dim, args.head_dim, args.n_heads, args.n_kv_heads
    per_token = 0
    for sparse in args.sparse:
        per_token += 2 * (C * (H + 2 * K) * D + H * D * C)  # projections
        per_token += 2 * 2 * H * D * (tokens + 1) / 2  # q.k and p.v over the causal context, on average
        mlp = args.n_experts * C + args.top_k * 3 * args.moe_hidden * C if sparse else 3 * args.dense_hidden * C
        per_token += 2 * mlp
    return tokens * per_token + 2 * C * args.vocab_size


def timed(fn, device: str) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokens", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    add_common_args(p)
    args = p.parse_args()
    dtype = getattr(torch, args.dtype)
    ours, hf = load_for(args)
    S = args.tokens
    ids = torch.randint(0, 151643, (1, S), generator=torch.Generator().manual_seed(0)).to(args.device)
    positions = torch.arange(S, device=args.device).float().expand(3, 1, -1)

    @torch.inference_mode()
    def run_ours():
        cache = ours.new_cache()
        rows = cache.rows([cache.add(S + 1)], S)
        return ours.head(ours.hidden(ours.embed_tokens(ids), positions, cache, rows=rows)[:, -1])

    @torch.inference_mode()
    def run_hf_body():
        out = hf.model.language_model(input_ids=ids, use_cache=True)
        return hf.lm_head(out.last_hidden_state[:, -1])

    @torch.inference_mode()
    def run_hf_forward():
        return hf(input_ids=ids).logits[:, -1]

    torch.testing.assert_close(run_ours(), run_hf_body(), atol=1e-3, rtol=1e-3)  # same model, same numbers
    run_hf_forward()  # warm up
    # interleaved rounds, best of each: a machine shared with other work then biases no side
    t_ours = t_body = t_fwd = float("inf")
    rate = 0.0
    for _ in range(args.repeats):
        t_ours = min(t_ours, timed(run_ours, args.device))
        t_body = min(t_body, timed(run_hf_body, args.device))
        t_fwd = min(t_fwd, timed(run_hf_forward, args.device))
        rate = max(rate, gemm_flops(dtype, args.device))
    flops = prefill_flops(ours.args, S)
    t_bound = flops / rate
    print(f"prefill of {S} tokens, {args.dtype} on {args.device} ({torch.get_num_threads()} threads); "
          f"{flops / 1e9:.1f} GFLOP active; GEMM {rate / 1e9:.0f} GFLOP/s")
    print(f"omnigraph                          {t_ours * 1e3:8.1f} ms  {S / t_ours:8.0f} tokens/s")
    print(f"transformers text model + last lm  {t_body * 1e3:8.1f} ms  {S / t_body:8.0f} tokens/s")
    print(f"transformers thinker forward       {t_fwd * 1e3:8.1f} ms  {S / t_fwd:8.0f} tokens/s (all logits)")
    print(f"compute bound                      {t_bound * 1e3:8.1f} ms  {S / t_bound:8.0f} tokens/s")
    print(f"omnigraph vs transformers: {t_body / t_ours:.2f}x (target >= 1.5x), {t_fwd / t_ours:.2f}x vs the full "
          f"forward; omnigraph / bound = {t_bound / t_ours:.1%}")


if __name__ == "__main__":
    main()
