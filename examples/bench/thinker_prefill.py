"""Thinker prefill speed on a 1000-token prompt: omnigraph vs transformers vs the compute bound.

    python examples/bench/thinker_prefill.py [--tokens 36 256 1000] [--dtype float32] [--device cpu] [--checkpoint DIR]

The checkpoint is the `small` one of thinker_decode.py (built with transformers unless --checkpoint is given).
omnigraph's prefill fills the KV cache and computes logits for the last position only (what generation
needs). transformers' thinker forward always computes logits at every position, which is costly with a
152064-token vocabulary, so it is timed twice: the whole forward, and (the fair comparison) its text model
with the KV cache plus lm_head on the last position. omnigraph is also timed prefilling in the batching
engine's chunks (`--chunk`, default its PREFILL_CHUNK: each chunk attends to the cached earlier ones), and with
`--prompts N` (N > 1) N prompts of N lengths from --tokens down to half of it, prefilled in one right-padded call
with one head over their last positions (as the engine's `prefill_many` runs newcomers that arrive together)
against each prompt alone. The
bound: measured GEMM FLOP/s over the active FLOPs (attention projections and scores, router, top-k experts; 2
per multiply-add; the last layer needs its keys and values at every position, the rest at the last). Target: >= 1.5x transformers.
On CPU the times are the process's CPU seconds (a machine shared with other work inflates wall time, not these).
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.nn.utils.rnn import pad_sequence
from thinker_decode import add_common_args, load_for, sync

from omnigraph.nodes.common.engine import PREFILL_CHUNK


def gemm_flops(dtype: torch.dtype, device: str, n: int = 2048, repeats: int = 5) -> float:
    a, b = (torch.randn(n, n, dtype=dtype, device=device) for _ in range(2))
    a @ b
    best = float("inf")
    for _ in range(repeats):
        best = min(best, timed(lambda: a @ b, device))
    return 2 * n ** 3 / best


def prefill_flops(args, tokens: int) -> float:
    """Active FLOPs of a causal prefill of `tokens` tokens for the next token: every layer's keys and values at
    every position; the last layer's query side, its MLP and the lm_head at the last position only."""
    C, D, H, K = args.dim, args.head_dim, args.n_heads, args.n_kv_heads
    total = 2 * C * args.vocab_size
    last = len(args.sparse) - 1
    for i, sparse in enumerate(args.sparse):
        queries, context = (1, tokens) if i == last else (tokens, (tokens + 1) / 2)  # keys seen, on average
        mlp = args.n_experts * C + args.top_k * 3 * args.moe_hidden * C if sparse else 3 * args.dense_hidden * C
        total += 2 * tokens * C * 2 * K * D  # keys and values
        total += 2 * queries * (C * H * D + H * D * C + 2 * H * D * context + mlp)  # q, output, q.k and p.v, MLP
    return total


def timed(fn, device: str) -> float:
    """Seconds of `fn`: CPU seconds of this process on CPU, wall seconds elsewhere."""
    clock = time.process_time if device == "cpu" else time.perf_counter
    sync(device)
    t0 = clock()
    fn()
    sync(device)
    return clock() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokens", type=int, nargs="+", default=[1000])
    p.add_argument("--chunk", type=int, default=PREFILL_CHUNK)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--prompts", type=int, default=1, help="also time this many prompts in one padded call")
    add_common_args(p)
    args = p.parse_args()
    ours, hf = load_for(args)
    for tokens in args.tokens:
        compare(ours, hf, tokens, args)
        if args.prompts > 1:
            compare_padded(ours, tokens, args)


def compare(ours, hf, S: int, args: argparse.Namespace) -> None:
    dtype = getattr(torch, args.dtype)
    ids = torch.randint(0, 151643, (1, S), generator=torch.Generator().manual_seed(0)).to(args.device)
    positions = torch.arange(S, device=args.device).float().expand(3, 1, -1)

    @torch.inference_mode()
    def run_ours(chunk: int = S):
        cache, embeds = ours.new_cache(), ours.embed_tokens(ids)
        slot = cache.add(S + 1)
        for start in range(0, S, chunk):
            end = min(S, start + chunk)
            rows = cache.rows([slot], end - start)
            hidden = ours.hidden(embeds[:, start:end], positions[:, :, start:end], cache, rows=rows,
                                 last_only=True)
        return ours.head(hidden[:, -1])

    @torch.inference_mode()
    def run_hf_body():
        out = hf.model.language_model(input_ids=ids, use_cache=True)
        return hf.lm_head(out.last_hidden_state[:, -1])

    @torch.inference_mode()
    def run_hf_forward():
        return hf(input_ids=ids).logits[:, -1]

    torch.testing.assert_close(run_ours(), run_hf_body(), atol=1e-3, rtol=1e-3)  # same model, same numbers
    torch.testing.assert_close(run_ours(args.chunk), run_hf_body(), atol=1e-3, rtol=1e-3)
    run_hf_forward()  # warm up
    # interleaved rounds, best of each: a machine shared with other work then biases no side
    t_ours = t_chunked = t_body = t_fwd = float("inf")
    rate = 0.0
    for _ in range(args.repeats):
        t_ours = min(t_ours, timed(run_ours, args.device))
        t_chunked = min(t_chunked, timed(lambda: run_ours(args.chunk), args.device))
        t_body = min(t_body, timed(run_hf_body, args.device))
        t_fwd = min(t_fwd, timed(run_hf_forward, args.device))
        rate = max(rate, gemm_flops(dtype, args.device))
    flops = prefill_flops(ours.args, S)
    t_bound = flops / rate
    print(f"prefill of {S} tokens, {args.dtype} on {args.device} ({torch.get_num_threads()} threads); "
          f"{flops / 1e9:.1f} GFLOP active; GEMM {rate / 1e9:.0f} GFLOP/s")
    print(f"omnigraph                          {t_ours * 1e3:8.1f} ms  {S / t_ours:8.0f} tokens/s")
    print(f"omnigraph in {args.chunk:4d}-position chunks   {t_chunked * 1e3:8.1f} ms  {S / t_chunked:8.0f} tokens/s")
    print(f"transformers text model + last lm  {t_body * 1e3:8.1f} ms  {S / t_body:8.0f} tokens/s")
    print(f"transformers thinker forward       {t_fwd * 1e3:8.1f} ms  {S / t_fwd:8.0f} tokens/s (all logits)")
    print(f"compute bound                      {t_bound * 1e3:8.1f} ms  {S / t_bound:8.0f} tokens/s")
    print(f"omnigraph vs transformers: {t_body / t_ours:.2f}x (target >= 1.5x), {t_fwd / t_ours:.2f}x vs the full "
          f"forward; chunked / one-shot = {t_chunked / t_ours:.2f}; omnigraph / bound = {t_bound / t_ours:.1%}")


def compare_padded(ours, S: int, args: argparse.Namespace) -> None:
    """N prompts of different lengths: one right-padded prefill call and one head, against each alone."""
    N = args.prompts
    lengths = [S - (S // 2) * i // (N - 1) for i in range(N)]
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(0, 151643, (n,), generator=g).to(args.device) for n in lengths]

    def positions(n: int) -> torch.Tensor:
        return torch.arange(n, device=args.device).float()

    @torch.inference_mode()
    def alone():
        for ids in prompts:
            cache = ours.new_cache()
            rows = cache.rows([cache.add(len(ids) + 1)], len(ids))
            hidden = ours.hidden(ours.embed_tokens(ids[None]), positions(len(ids)).expand(3, 1, -1), cache,
                                 rows=rows, last_only=True)
            ours.batch_head(hidden[:, -1])

    @torch.inference_mode()
    def padded():
        cache = ours.new_cache()
        rows = cache.rows([cache.add(n + 1) for n in lengths], lengths)
        embeds = pad_sequence([ours.embed_tokens(ids) for ids in prompts], batch_first=True)  # [N, S, C]
        pos = pad_sequence([positions(n) for n in lengths], batch_first=True).expand(3, -1, -1)
        ours.batch_head(ours.hidden(embeds, pos, cache, rows=rows, last_only=True)[:, 0])

    t_alone = t_padded = float("inf")
    for _ in range(args.repeats):
        t_alone = min(t_alone, timed(alone, args.device))
        t_padded = min(t_padded, timed(padded, args.device))
    print(f"{N} prompts of {lengths[-1]}-{S} tokens: one by one {t_alone * 1e3 / N:8.1f} ms per prompt, one padded "
          f"call {t_padded * 1e3 / N:8.1f} ms per prompt ({sum(lengths) / (N * S):.0%} of it real positions): "
          f"padded / alone = {t_padded / t_alone:.2f}")


if __name__ == "__main__":
    main()
