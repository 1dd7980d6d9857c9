"""Time to the first audio packet: omnigraph's streaming qwen3_omni graph vs transformers' generate(return_audio=True)
(which returns audio only at the end), on one `small` checkpoint, for replies of 64 and 256 Thinker tokens.

    python examples/bench/first_packet.py [--frames 200] [--threads 1] [--checkpoint DIR]

Prints, per reply length: omnigraph's time to the first audio chunk, transformers' wall time for the same
prompt, and their ratio (target <= 0.05), then the 256-token first packet over the 64-token one (target
<= 1.2: the first packet must not wait for the whole reply). Both sides sample the Talker with the released
settings and the Thinker greedily, with the same token and frame budgets (transformers also gets
min_new_tokens, so its reply has the asked length; a random checkpoint seldom stops early on either side).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.nodes.qwen3.checkpoint_writer import write_checkpoint
from omnigraph.runtime.errors import RunCancelled
from omnigraph.runtime.executor_local import LocalExecutor
from omnigraph.runtime.validate import load_graph

TEXT = "Tell me everything you know about the weather in Paris."


def omnigraph_first_packet(checkpoint: Path, tokens: int, frames: int, repeats: int) -> tuple[float, float, list[int]]:
    """Best time to the first audio chunk over `repeats` runs (each cancelled once it has it), the wall time of
    one complete run, and the prompt ids."""
    overrides = {("thinker", "greedy"): True, ("thinker", "max_new_tokens"): tokens, ("talker", "max_frames"): frames}
    graph = load_graph("qwen3_omni", overrides=overrides)
    executor = LocalExecutor(graph, checkpoint=Checkpoint.open(checkpoint))
    executor.load()
    t0 = time.perf_counter()
    result = executor.run({"text": TEXT})
    wall = time.perf_counter() - t0
    print(f"    (omnigraph reply: {len(result.outputs['thinker_token_ids'].ids)} tokens, "
          f"{len(result.outputs['codec_codes'].frames)} frames)")
    firsts = first_packet_times(executor, {"text": TEXT}, repeats)
    return min(firsts), wall, list(result.outputs["prompt_token_ids"].ids)


def first_packet_times(executor: Any, inputs: dict[str, Any], repeats: int) -> list[float]:
    """Seconds from `start()` to the first audio chunk, one per run (each run cancelled once it has it)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run = executor.start(inputs)
        for event in run.events():
            if event.name == "audio":
                times.append(time.perf_counter() - t0)
                run.cancel()
                break
        try:
            run.result()
        except RunCancelled:
            pass
    return times


def transformers_wall(model, prompt: list[int], tokens: int, frames: int) -> float:
    x = torch.tensor([prompt])
    t0 = time.perf_counter()
    with torch.inference_mode():
        model.generate(input_ids=x, attention_mask=torch.ones_like(x), return_audio=True, thinker_do_sample=False,
                       thinker_max_new_tokens=tokens, thinker_min_new_tokens=tokens, talker_max_new_tokens=frames + 1)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--repeats", type=int, default=3, help="first-packet runs per length (best counts)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import Qwen3OmniMoeForConditionalGeneration

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint or write_checkpoint(Path(tmp) / "small", "small", seed=0)
        model = Qwen3OmniMoeForConditionalGeneration.from_pretrained(
            checkpoint, torch_dtype=torch.float32, attn_implementation="eager").eval()
        firsts = {}
        print(f"small checkpoint, {args.frames} frames, torch threads {args.threads}")
        for tokens in (64, 256):
            first, wall, prompt = omnigraph_first_packet(checkpoint, tokens, args.frames, args.repeats)
            reference = transformers_wall(model, prompt, tokens, args.frames)
            firsts[tokens] = first
            print(f"  reply {tokens:3d} tokens: omnigraph first packet {first * 1e3:7.0f} ms (whole run {wall:6.2f} s)"
                  f" | transformers generate {reference:6.2f} s | ratio {first / reference:.4f} (target <= 0.05)")
        print(f"  first packet, 256-token reply / 64-token reply: {firsts[256] / firsts[64]:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
