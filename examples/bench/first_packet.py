"""Time to the first audio packet: omnigraph's streaming graphs vs transformers' generate (which returns audio
only at the end), on random checkpoints in the released format.

    python examples/bench/first_packet.py [--family both|qwen3|qwen2_5] [--frames 200] [--codes 200]
                                          [--threads 1] [--checkpoint DIR] [--checkpoint25 DIR]

Qwen3-Omni (`small` checkpoint), for replies of 64 and 256 Thinker tokens: omnigraph's time to the first audio
chunk, transformers' wall time for the same prompt, and their ratio (target <= 0.05), then the 256-token first
packet over the 64-token one (target <= 1.2: the first packet must not wait for the whole reply). Both sides
sample the Talker with the released settings and the Thinker greedily, with the same token and frame budgets
(transformers also gets min_new_tokens, so its reply has the asked length; a random checkpoint seldom stops
early on either side).

Qwen2.5-Omni (`small25` checkpoint, a 64-token reply, at most --codes codec ids of 20 ms): the same, for
token2wav in `whole` mode (the default: one ODE over the utterance, equal to transformers, so the first packet
waits for the last code) and `stream` mode (block by block), and token2wav's real-time factor (seconds of
compute per second of audio) next to transformers' token2wav in its own generate (its Talker samples its own codes).
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


def qwen2_5_first_packet(checkpoint: Path, mode: str, tokens: int, codes: int, repeats: int) -> dict[str, Any]:
    """omnigraph's qwen2_5_omni with token2wav in `mode`: best first-packet time, one whole run's wall time,
    codes and token2wav RTF (its compute after the Talker's last code, per second of audio: in `whole` mode
    all of token2wav's work), and the prompt ids."""
    overrides = {("thinker", "greedy"): True, ("thinker", "max_new_tokens"): tokens,
                 ("talker", "max_codes"): codes, ("token2wav", "mode"): mode}
    executor = LocalExecutor(load_graph("qwen2_5_omni", overrides=overrides), checkpoint=Checkpoint.open(checkpoint))
    executor.load()
    t0 = time.perf_counter()
    result = executor.run({"text": TEXT})
    wall = time.perf_counter() - t0
    nodes = result.stats.nodes
    n_codes = len(result.outputs["codec_codes"].ids)
    vocoder_s = nodes["token2wav"].finished - nodes["talker"].finished
    firsts = first_packet_times(executor, {"text": TEXT}, repeats)
    executor.shutdown()
    return {"first": min(firsts), "wall": wall, "codes": n_codes, "rtf": vocoder_s / (n_codes * 0.02),
            "prompt": list(result.outputs["prompt_token_ids"].ids)}


def transformers_qwen2_5(model, prompt: list[int], tokens: int, codes: int) -> tuple[float, float]:
    """transformers' generate wall time on `prompt`, and its token2wav's real-time factor in that run."""
    token2wav, spent = model.token2wav.forward, {}

    def timed(code, *args, **kwargs):
        t = time.perf_counter()
        wav = token2wav(code, *args, **kwargs)
        spent["s"], spent["codes"] = time.perf_counter() - t, code.shape[-1]
        return wav

    model.token2wav.forward = timed
    x = torch.tensor([prompt])
    t0 = time.perf_counter()
    try:
        with torch.inference_mode():
            model.generate(input_ids=x, attention_mask=torch.ones_like(x), thinker_do_sample=False,
                           thinker_max_new_tokens=tokens, thinker_min_new_tokens=tokens,
                           talker_max_new_tokens=codes)
    finally:
        del model.token2wav.forward
    return time.perf_counter() - t0, spent["s"] / (spent["codes"] * 0.02)


def qwen2_5_lines(checkpoint: Path | None, codes: int, repeats: int) -> None:
    from transformers import Qwen2_5OmniForConditionalGeneration

    from omnigraph.nodes.qwen2_5.checkpoint_writer import default_checkpoint

    checkpoint = checkpoint or default_checkpoint("small25")
    model = Qwen2_5OmniForConditionalGeneration.from_pretrained(
        checkpoint, torch_dtype=torch.float32, attn_implementation="eager").eval()
    tokens = 64
    print(f"Qwen2.5-Omni small25 checkpoint, reply {tokens} tokens, at most {codes} codes, "
          f"torch threads {torch.get_num_threads()}")
    runs = {mode: qwen2_5_first_packet(checkpoint, mode, tokens, codes, repeats) for mode in ("whole", "stream")}
    reference, reference_rtf = transformers_qwen2_5(model, runs["whole"]["prompt"], tokens, codes)
    for mode, ours in runs.items():
        print(f"  token2wav {mode:6s}: omnigraph first packet {ours['first'] * 1e3:7.0f} ms (whole run "
              f"{ours['wall']:6.2f} s, {ours['codes']} codes) | transformers generate {reference:6.2f} s | "
              f"ratio {ours['first'] / reference:.4f}")
    print(f"  token2wav real-time factor (whole mode, compute per second of audio): omnigraph "
          f"{runs['whole']['rtf']:.3f}, transformers {reference_rtf:.3f}")


def transformers_wall(model, prompt: list[int], tokens: int, frames: int) -> float:
    x = torch.tensor([prompt])
    t0 = time.perf_counter()
    with torch.inference_mode():
        model.generate(input_ids=x, attention_mask=torch.ones_like(x), return_audio=True, thinker_do_sample=False,
                       thinker_max_new_tokens=tokens, thinker_min_new_tokens=tokens, talker_max_new_tokens=frames + 1)
    return time.perf_counter() - t0


def qwen3_lines(checkpoint: Path | None, frames: int, repeats: int) -> None:
    from transformers import Qwen3OmniMoeForConditionalGeneration

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = checkpoint or write_checkpoint(Path(tmp) / "small", "small", seed=0)
        model = Qwen3OmniMoeForConditionalGeneration.from_pretrained(
            checkpoint, torch_dtype=torch.float32, attn_implementation="eager").eval()
        firsts = {}
        print(f"small checkpoint, {frames} frames, torch threads {torch.get_num_threads()}")
        for tokens in (64, 256):
            first, wall, prompt = omnigraph_first_packet(checkpoint, tokens, frames, repeats)
            reference = transformers_wall(model, prompt, tokens, frames)
            firsts[tokens] = first
            print(f"  reply {tokens:3d} tokens: omnigraph first packet {first * 1e3:7.0f} ms (whole run {wall:6.2f} s)"
                  f" | transformers generate {reference:6.2f} s | ratio {first / reference:.4f} (target <= 0.05)")
        print(f"  first packet, 256-token reply / 64-token reply: {firsts[256] / firsts[64]:.2f} (target <= 1.2)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("both", "qwen3", "qwen2_5"), default="both")
    parser.add_argument("--frames", type=int, default=200, help="Qwen3-Omni: codec frames (80 ms each)")
    parser.add_argument("--codes", type=int, default=200, help="Qwen2.5-Omni: codec ids (20 ms each)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoint", type=Path, help="a Qwen3-Omni checkpoint (default: a small one)")
    parser.add_argument("--checkpoint25", type=Path, help="a Qwen2.5-Omni checkpoint (default: small25, cached)")
    parser.add_argument("--repeats", type=int, default=3, help="first-packet runs per line (best counts)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.family in ("both", "qwen3"):
        qwen3_lines(args.checkpoint, args.frames, args.repeats)
    if args.family in ("both", "qwen2_5"):
        qwen2_5_lines(args.checkpoint25, args.codes, args.repeats)


if __name__ == "__main__":
    main()
