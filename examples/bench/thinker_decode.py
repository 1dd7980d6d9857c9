"""Thinker decode speed: greedy generation at batch 1, omnigraph vs transformers vs the memory-bandwidth bound.

    python examples/bench/thinker_decode.py [--new-tokens 128] [--batch N] [--dtype float32] [--device cpu]
                                            [--checkpoint DIR]

Without --checkpoint, a `small`-sized random checkpoint is built with transformers into a temporary folder
(thinker: 8 layers x 512 hidden, 8 q / 2 kv heads of 128, 16 experts top-4 of width 96, 152064-token
vocabulary: the sizes of `omnigraph make-checkpoint --preset small`).

The bound: decoding one token must read every weight it touches once (attention, norms, router, its top-k
experts, one embedding row, the whole lm_head) plus the KV cache; bound tokens/s = measured matrix-vector read
bandwidth / those bytes. Target: omnigraph >= 85% of the bound.

--batch N (N > 1) also times one decode step of N sequences at once (ragged lengths, as the batching engine
runs them; layers and lm_head), against a single-row step (the two alternate).
Both decode greedily, reading only each row's best logit (`best=1`: the lm_head screened in bfloat16 where the
CPU has it, screened_head.py), as the batching engine does for greedy and top-k rows.

On CPU every time is the process's CPU time (the bandwidth too), so time the process waits for a core does
not count. On a CPU shared with other work, pass --threads 1: one core already saturates the memory bandwidth at batch 1,
and extra OpenMP threads then mostly wait for each other (timings with 2 threads on a busy 2-core machine
varied by 5x between runs).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

SMALL_TEXT = dict(vocab_size=152064, hidden_size=512, intermediate_size=1024, num_hidden_layers=8,
                  num_attention_heads=8, num_key_value_heads=2, head_dim=128, moe_intermediate_size=96,
                  num_experts=16, num_experts_per_tok=4, norm_topk_prob=True, decoder_sparse_step=1,
                  mlp_only_layers=[], max_position_embeddings=32768, rms_norm_eps=1e-6,
                  rope_parameters=dict(rope_type="default", rope_theta=1e6, mrope_section=[24, 20, 20],
                                       interleaved=True))
PROMPT = [151644, 872, 198, 74785, 279, 9104, 304, 12095, 3351, 11, 26753, 13, 151645, 198, 151644, 77091, 198]


def build_small_checkpoint(folder: Path) -> Path:
    """A random transformers Qwen3-Omni model with a small-preset Thinker, saved as a HF checkpoint."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
    from oracle import build_model, save_checkpoint  # the test oracle's tiny configs for the other stages

    hidden = SMALL_TEXT["hidden_size"]
    model = build_model({"thinker_config.text_config": SMALL_TEXT,
                         "thinker_config.audio_config": {"output_dim": hidden},
                         "thinker_config.vision_config": {"out_hidden_size": hidden},
                         "talker_config": {"thinker_hidden_size": hidden}})
    return save_checkpoint(model, folder)


def load_both(path: Path, dtype: torch.dtype, device: str):
    from transformers import Qwen3OmniMoeForConditionalGeneration

    from omnigraph.nodes.thinker.weights import load_thinker
    from omnigraph.runtime.checkpoint import Checkpoint

    ours = load_thinker(Checkpoint.open(path), dtype=dtype, device=device)
    hf = Qwen3OmniMoeForConditionalGeneration.from_pretrained(path, dtype=dtype).thinker.to(device).eval()
    return ours, hf


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def clock(device: str) -> float:
    """Seconds: the process's CPU time on CPU, wall time elsewhere."""
    return time.process_time() if device == "cpu" else time.perf_counter()


def matvec_bandwidth(dtype: torch.dtype, device: str, mbytes: int = 512, calls: int = 20) -> float:
    """Sustained bytes/s of back-to-back [1, K] x [K, N] products with a weight much bigger than the caches (the
    kind of op decoding is made of): the fastest of a few shapes and both weight layouts."""
    item = torch.empty((), dtype=dtype).element_size()
    best = 0.0
    for cols in (4096, 262144):  # square-ish, and wide like an lm_head
        rows = mbytes * 2**20 // (cols * item)
        w = torch.randn(rows, cols, dtype=dtype, device=device)
        for layout in ("linear", "x@w"):  # w as [N, K] (torch.nn.Linear's), or as [K, N]
            x = torch.randn(1, cols if layout == "linear" else rows, dtype=dtype, device=device)
            for timed in (False, True):  # a warm-up pass, then the timed one
                sync(device)
                t0 = clock(device)
                for _ in range(calls if timed else 1):
                    torch.nn.functional.linear(x, w) if layout == "linear" else x @ w
                sync(device)
            best = max(best, calls * w.numel() * item / (clock(device) - t0))
        w = None  # free before the next shape
    return best


def bytes_per_token(model, context: int) -> int:
    """Weights one decode step reads, plus the KV cache of `context` positions."""
    a = model.args
    item = model.lm_head.weight.element_size()
    C, D, H, K = a.dim, a.head_dim, a.n_heads, a.n_kv_heads
    per_layer = C * (H + 2 * K) * D + H * D * C + 2 * D + 2 * C + 2 * K * D * context  # attention, norms, cache
    total = 0
    for sparse in a.sparse:
        mlp = a.n_experts * C + a.top_k * 3 * a.moe_hidden * C if sparse else 3 * a.dense_hidden * C
        total += per_layer + mlp
    return (total + C + C + a.vocab_size * C) * item  # final norm, embedding row, lm_head


def run_ours(model, ids: torch.Tensor, new_tokens: int) -> tuple[list[int], float]:
    from omnigraph.nodes.thinker.model import generate

    embeds = model.embed_tokens(ids)[None]
    positions = torch.arange(ids.numel(), device=ids.device).float().expand(3, 1, -1)
    device = str(ids.device)
    t0 = clock(device)
    out = list(generate(model, embeds, positions, 0, lambda logits, prev: logits.argmax(-1), new_tokens, best=1))
    sync(device)
    return out, clock(device) - t0


def run_hf(model, ids: torch.Tensor, new_tokens: int) -> tuple[list[int], float]:
    device = str(ids.device)
    with torch.inference_mode():
        t0 = clock(device)
        out = model.generate(input_ids=ids[None], max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             do_sample=False, eos_token_id=None)
        sync(device)
        return out[0, ids.numel():].tolist(), clock(device) - t0


@torch.inference_mode()
def step_ms(model, ids: torch.Tensor, batches: tuple[int, ...], steps: int = 20) -> list[float]:
    """Median time of one decode step (layers and lm_head) at each batch size, in ms: sequence b's prompt is ids
    plus 3b more tokens (so the lengths differ, as in the engine), and the batch sizes take turns step by step (a
    machine whose load changes then biases none of them)."""
    device = str(ids.device)
    runs = []
    for batch in batches:
        cache = model.new_cache()
        slots = [cache.add(ids.numel() + 3 * batch + steps + 3) for _ in range(batch)]
        for b, slot in enumerate(slots):
            prompt = ids.repeat(2 + 3 * b // ids.numel())[:ids.numel() + 3 * b]
            positions = torch.arange(prompt.numel(), device=ids.device).float().expand(3, 1, -1)
            model.hidden(model.embed_tokens(prompt)[None], positions, cache, rows=cache.rows([slot], prompt.numel()))
        runs.append((cache, slots, ids[:1].expand(batch).contiguous(), []))
    for step in range(steps + 3):  # 3 warm-up steps
        for cache, slots, tokens, times in runs:
            rows = cache.rows(slots, 1)
            positions = torch.tensor(rows.starts, dtype=torch.float32, device=ids.device)
            sync(device)
            t0 = clock(device)
            model.decode_step(tokens, positions, cache, rows, best=1)
            sync(device)
            if step >= 3:
                times.append(clock(device) - t0)
    return [1e3 * sorted(times)[len(times) // 2] for *_, times in runs]


def add_common_args(p: argparse.ArgumentParser) -> None:
    """Flags both Thinker benchmarks take."""
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--checkpoint", type=Path, help="an existing checkpoint folder (default: build a small one)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")


def load_for(args: argparse.Namespace):
    """Set threads, load omnigraph's and transformers' Thinkers from --checkpoint (or a fresh small one)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.checkpoint or build_small_checkpoint(Path(tmp) / "small")
        return load_both(path, getattr(torch, args.dtype), args.device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=1, help="also time a decode step of this many sequences")
    add_common_args(p)
    args = p.parse_args()
    dtype = getattr(torch, args.dtype)
    ours, hf = load_for(args)
    ids = torch.tensor(PROMPT, device=args.device)
    a = ours.args
    print(f"thinker: {a.n_layers} layers x {a.dim}, {a.n_heads}/{a.n_kv_heads} heads of {a.head_dim}, "
          f"{a.n_experts} experts top-{a.top_k} (width {a.moe_hidden}), vocab {a.vocab_size}; {args.dtype} on "
          f"{args.device} ({torch.get_num_threads()} threads); prompt {ids.numel()}, {args.new_tokens} new tokens")

    run_ours(ours, ids, 4), run_hf(hf, ids, 4)  # warm up
    # interleaved rounds, best of each: a machine shared with other work then biases no side
    ours_best = hf_best = float("inf")
    bandwidth = 0.0
    for _ in range(args.repeats):
        ours_tokens, t = run_ours(ours, ids, args.new_tokens)
        ours_best = min(ours_best, t)
        hf_tokens, t = run_hf(hf, ids, args.new_tokens)
        hf_best = min(hf_best, t)
        bandwidth = max(bandwidth, matvec_bandwidth(dtype, args.device))
    same = ours_tokens == hf_tokens
    ours_tps, hf_tps = args.new_tokens / ours_best, args.new_tokens / hf_best
    per_token = bytes_per_token(ours, ids.numel() + args.new_tokens // 2)
    bound_tps = bandwidth / per_token
    print(f"matvec read bandwidth {bandwidth / 1e9:.1f} GB/s; {per_token / 1e6:.1f} MB touched per token "
          f"(lm_head {a.vocab_size * a.dim * ours.lm_head.weight.element_size() / 1e6:.1f} MB)")
    print(f"omnigraph     {ours_tps:8.1f} tokens/s")
    print(f"transformers  {hf_tps:8.1f} tokens/s")
    print(f"bound         {bound_tps:8.1f} tokens/s")
    print(f"omnigraph / bound = {ours_tps / bound_tps:.1%} (target >= 85%); omnigraph / transformers = "
          f"{ours_tps / hf_tps:.2f}x; greedy tokens identical: {same}")
    if ours.decode_head().screen is not None:  # the step reads the head's bfloat16 copy, not its float32 weights
        screened_tps = bandwidth / (per_token - a.vocab_size * a.dim * (ours.lm_head.weight.element_size() - 2))
        print(f"bound of the bytes a screened step reads (the head in bfloat16) {screened_tps:8.1f} tokens/s; "
              f"omnigraph / it = {ours_tps / screened_tps:.1%}")
    if args.batch > 1:
        one, many = step_ms(ours, ids, (1, args.batch))
        print(f"decode step: batch 1 {one:.1f} ms, batch {args.batch} {many:.1f} ms ({many / one:.2f}x one row; "
              f"{args.batch * one / many:.2f}x the tokens/s of single rows)")


if __name__ == "__main__":
    main()
