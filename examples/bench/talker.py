"""Talker + code predictor speed: codec frames/s of omnigraph's talker <-> code_predictor loop (a graph with a
loop edge, run by the local executor) vs transformers' talker.generate (which runs the code predictor through a
generic generate() per frame), on the same prompt.

    python examples/bench/talker.py [--frames 100] [--threads 1] [--checkpoint DIR] [--greedy]

Without --checkpoint, a `small` preset checkpoint (bfloat16 on disk) is written to a temporary folder; both
sides load it in float32. transformers' talker.generate is called with the arguments the top-level
generate(return_audio=True) passes it (captured from one short call), with min_new_tokens so it makes exactly
--frames frames; our talker gets min_frames = max_frames = --frames, so both sides make the same frames (EOS held
back until then, sampled or greedy). Each side runs --repeats times (interleaved), timed in CPU seconds of the
process (time.process_time: pin it, e.g. taskset -c 1, on a shared machine); the ranges over the repeats are
printed, and the speed-up of each repeat's pair. Target: omnigraph >= 3x.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

PROMPT = [151644, 872, 198, 74785, 279, 9104, 304, 12095, 3351, 11, 26753, 13, 151645, 198, 151644, 77091, 198]

TTS = """
nodes:
  interleaver: {kind: mrope_interleaver}
  context: {kind: text_context}
  talker: {kind: talker, config: {greedy: %s, max_frames: %d, min_frames: %d}}
  code_predictor: {kind: code_predictor, config: {greedy: %s}}
edges:
  - interleaver.thinker_prompt -> context.thinker_prompt
  - context.talker_context -> talker.context
  - talker.requests -> code_predictor.requests
loops: [code_predictor.frames -> talker.frames]
inputs: {prompt: interleaver.prompt, tokens: talker.tokens}
outputs: {codes: talker.codes}
"""


def transformers_talker_call(model, frames: int, greedy: bool):
    """Capture what the top-level generate passes to talker.generate (one short call), then return a function
    that runs talker.generate with those arguments for `frames` frames, and the thinker's reply ids."""
    captured = {}
    original = model.talker.generate

    def spy(*args, **kwargs):
        captured["args"], captured["kwargs"] = args, kwargs
        return original(*args, **kwargs)

    model.talker.generate = spy
    x = torch.tensor([PROMPT])
    with torch.inference_mode():
        seq, _ = model.generate(input_ids=x, attention_mask=torch.ones_like(x), return_audio=True,
                                thinker_do_sample=False, thinker_max_new_tokens=24, talker_max_new_tokens=2,
                                talker_do_sample=not greedy)
    del model.talker.generate
    kwargs = dict(captured["kwargs"], max_new_tokens=frames + 1, min_new_tokens=frames + 1)

    def run():
        with torch.inference_mode():
            out = model.talker.generate(*captured["args"], **kwargs)
        return sum(step[1] is not None for step in out.hidden_states)

    return run, seq[0, x.shape[1]:].tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--greedy", action="store_true", help="greedy decoding (default: sampling, as released)")
    parser.add_argument("--repeats", type=int, default=4, help="runs of each side, interleaved")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from transformers import Qwen3OmniMoeForConditionalGeneration

    from omnigraph.runtime.checkpoint import Checkpoint
    from omnigraph.nodes.qwen3.checkpoint_writer import write_checkpoint
    from omnigraph.runtime.executor_local import LocalExecutor
    from omnigraph.nodes.common.token_payloads import TokenId
    from omnigraph.nodes.qwen.payloads import PromptTokens
    from omnigraph.testing import graph_from_yaml

    with tempfile.TemporaryDirectory() as tmp:
        path = args.checkpoint or write_checkpoint(Path(tmp) / "small", "small")
        hf = Qwen3OmniMoeForConditionalGeneration.from_pretrained(path, dtype=torch.float32).eval()
        hf_run, reply = transformers_talker_call(hf, args.frames, args.greedy)

        flag = str(args.greedy).lower()
        executor = LocalExecutor(graph_from_yaml(TTS % (flag, args.frames, args.frames, flag)),
                                 checkpoint=Checkpoint.open(path))
        executor.load()
        inputs = {"prompt": PromptTokens(torch.tensor(PROMPT)), "tokens": [TokenId(i) for i in reply]}
        executor.run(inputs, seed=1)  # warm-up
        rates: dict[str, list[float]] = {"omnigraph": [], "transformers": []}  # frames per CPU second, by repeat
        for _ in range(args.repeats):
            for name, fn in (("omnigraph", lambda: len(executor.run(inputs, seed=2).outputs["codes"].frames)),
                             ("transformers", hf_run)):
                start = time.process_time()
                n = fn()
                seconds = time.process_time() - start
                if n != args.frames:
                    raise SystemExit(f"{name} made {n} frames, not {args.frames}")
                rates[name].append(n / seconds)
    print(f"talker + code predictor, small preset, float32, cpu, {args.threads} thread(s), "
          f"{'greedy' if args.greedy else 'sampled'}, reply of {len(reply)} tokens, {args.frames} frames each, "
          f"{args.repeats} repeats")
    for name, r in rates.items():
        print(f"  {name:>12}: {min(r):7.1f} - {max(r):7.1f} frames per CPU second")
    ratios = sorted(a / b for a, b in zip(rates["omnigraph"], rates["transformers"]))
    print(f"  speed-up: {ratios[0]:.2f} - {ratios[-1]:.2f}x (per repeat; target >= 3x)")


if __name__ == "__main__":
    main()
