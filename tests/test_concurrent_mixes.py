"""Issue 10 acceptance, end to end: mixes of concurrent `qwen3_omni` and `captioner` requests through the public API
(`load_graph` + `LocalExecutor.start` called many times, runs overlapping; and `omnigraph run` in parallel
processes) on a held-out-like checkpoint of odd sizes. Every surviving run's Thinker tokens, codec codes and
waveform equal the same run alone (tokens and codes identical, waveform within 1e-5); a missing file, a corrupt
file, a clip too short for the mel batch and a run cancelled mid-stream get their own errors while the others are
in flight; `max_batch` (2, with more runs than that) bounds every stage's batches and the runs beyond it join
later. Overlap is made certain by gates (tests/mix_gates.py), never by timing. Sampling settings and budgets are
node config, one per loaded graph (the public API has no per-run settings), so they differ between the three
executors whose runs are in flight together; within one executor runs differ by input and seed."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from held_batch import WAIT, wait_until
from mix_gates import ThinkerGate, hold_first_batch
from test_graphs_qwen3_omni import write_video_with_speech

from omnigraph import LocalExecutor, load_graph
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.checkpoint_writer import write_checkpoint
from omnigraph.runtime.errors import NodeFailed, RunCancelled, UserError
from omnigraph.runtime.media_payloads import MediaItem
from omnigraph.runtime.payloads import FilePath, Text
from omnigraph.testing import graph_from_yaml, run_node

MEDIA = Path(__file__).parent / "fixtures" / "media"
SPEECH, PICTURE = MEDIA / "speech.wav", MEDIA / "picture.png"
MAX_BATCH = 2
# Sizes no shipped preset has (odd head counts and widths, 3 codebooks, a dense layer among MoE ones).
ODD = {"thinker_config.text_config": dict(head_dim=20, mrope_section=[2, 4, 4], num_attention_heads=3,
                                          num_key_value_heads=1, num_hidden_layers=3, decoder_sparse_step=2,
                                          intermediate_size=40, moe_intermediate_size=24, num_experts=5,
                                          num_experts_per_tok=3),
       "thinker_config.vision_config": dict(depth=2, deepstack_visual_indexes=[1], num_heads=2, hidden_size=24,
                                            intermediate_size=40),
       "thinker_config.audio_config": dict(encoder_layers=1, d_model=24, encoder_attention_heads=3,
                                           downsample_hidden_size=8, encoder_ffn_dim=40),
       "talker_config": dict(num_code_groups=3, accept_hidden_layer=1),
       "talker_config.text_config": dict(num_hidden_layers=3, num_experts=3, intermediate_size=48, head_dim=8,
                                         mrope_section=[2, 1, 1]),
       "talker_config.code_predictor_config": dict(num_code_groups=3, num_hidden_layers=1, head_dim=8),
       "code2wav_config": dict(num_quantizers=3, decoder_dim=40, num_attention_heads=2, num_key_value_heads=1,
                               upsampling_ratios=[3, 2])}
OMNI = {("thinker", "max_new_tokens"): 5, ("talker", "max_frames"): 4, ("*", "max_batch"): MAX_BATCH}
CAPTIONER = {("thinker", "max_new_tokens"): 6, ("thinker", "temperature"): 1.3, ("thinker", "top_k"): 30,
             ("*", "max_batch"): MAX_BATCH}
SPOKEN = {("thinker", "max_new_tokens"): 3, ("thinker", "greedy"): True, ("talker", "max_frames"): 3,
          ("talker", "speaker"): "chelsie", ("talker", "temperature"): 1.4, ("talker", "top_k"): 7,
          ("code_predictor", "top_k"): 9, ("code_predictor", "temperature"): 0.7, ("*", "max_batch"): MAX_BATCH}
# The qwen3_omni graph fed a ready prompt (the shipped prompt node takes one image; its payload takes more).
PROMPTED = """
extends: qwen3_omni
remove: [prompt]
inputs:
  chat: {to: [mel.prompt, vision_encoder.prompt, interleaver.prompt]}
"""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Checkpoint:
    return Checkpoint.open(write_checkpoint(tmp_path_factory.mktemp("odd"), "tiny", seed=11, overrides=ODD))


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("media")
    wave, rate = sf.read(SPEECH, dtype="float32")
    sf.write(folder / "cut.wav", wave[: int(1.1 * rate)], rate)
    sf.write(folder / "click.wav", np.zeros(10, np.float32), 16000)  # 10 samples: too short for a mel frame
    short = wave[: int(0.54 * 44100)]  # stereo at 44.1 kHz; 54 mel frames: less than one audio encoder chunk
    sf.write(folder / "short.wav", np.stack([short, short[::-1]], axis=1), 44100)
    (folder / "corrupt.wav").write_bytes(b"not audio at all")
    (folder / "corrupt.png").write_bytes(PICTURE.read_bytes()[:200])
    write_video_with_speech(folder / "clip.mp4", seconds=1.0, fps=4)
    files = {name: str(folder / name) for name in ("cut.wav", "short.wav", "click.wav", "corrupt.wav", "corrupt.png",
                                                   "clip.mp4")}
    return files | {"speech": str(SPEECH), "picture": str(PICTURE), "missing": str(folder / "missing.wav")}


def loaded(graph, checkpoint) -> LocalExecutor:
    executor = LocalExecutor(graph, device="cpu", checkpoint=checkpoint)
    executor.load()
    return executor


def outcome(result) -> dict:
    """What must not change with batching: the prompt, the Thinker's tokens, the codec codes and the waveform."""
    out = result.outputs
    got = {"prompt": list(out["prompt_token_ids"].ids), "tokens": list(out["thinker_token_ids"].ids)}
    if "codec_codes" in out:
        got["codes"] = [list(frame) for frame in out["codec_codes"].frames]
        got["wave"] = torch.cat([chunk.samples for chunk in out["audio"]])
    return got


def assert_same(got: dict, want: dict, what: str) -> None:
    assert got.keys() == want.keys(), what
    assert got["prompt"] == want["prompt"] and got["tokens"] == want["tokens"], what
    if "codes" in want:
        assert got["codes"] == want["codes"], what
        torch.testing.assert_close(got["wave"], want["wave"], atol=1e-5, rtol=0, msg=what)


def chat(checkpoint, **inputs):
    """The prompt node's PromptTokens for `inputs` (payloads)."""
    return run_node("prompt", {k: Text(v) if isinstance(v, str) else v for k, v in inputs.items()},
                    checkpoint=checkpoint)["prompt"]


def two_image_prompt(checkpoint, text: str):
    """The prompt node's tokens for (picture, text) with a second image (the picture flipped) after the first."""
    image = run_node("media_decode", {"path": FilePath(str(PICTURE))}, {"expect": "image"})["image"]
    prompt = chat(checkpoint, image=image, text=text)
    ids = prompt.ids.tolist()
    start = ids.index(151652)  # <|vision_start|><|image_pad|><|vision_end|>
    flipped = type(image)(image.pixels.flip(1).contiguous(), image.source)
    return type(prompt)(ids=torch.tensor(ids[:start + 3] + ids[start:]),
                        media=(MediaItem("image", 0), MediaItem("image", 1)), images=(image, flipped))


def omni_requests(media) -> list[tuple[dict, int]]:
    """Prompts of different lengths and modalities, each its own seed (sampled: the seed decides)."""
    return [({"text": "Hi."}, 1),
            ({"text": "Name three colours, say which you like best and why, in one short sentence."}, 2),
            ({"audio": media["speech"], "text": "What was said?"}, 3),
            ({"image": media["picture"], "text": "What is this?"}, 4),
            ({"video": media["clip.mp4"], "text": "What happens?"}, 5),
            ({"audio": media["cut.wav"]}, 6),
            ({"image": media["picture"], "audio": media["cut.wav"], "text": "Describe both."}, 7),
            ({"audio": media["short.wav"], "text": "And this?"}, 8),
            ({"text": " ".join(["Tell me every colour you know"] * 45)}, 9)]  # over 256 tokens: chunked prefill


def caption_requests(media) -> list[tuple[dict, int]]:
    return [({"audio": media["speech"]}, 1), ({"audio": media["cut.wav"]}, 2), ({"audio": media["clip.mp4"]}, 3),
            ({"audio": media["speech"], "text": "Describe the voice."}, 4), ({"audio": media["short.wav"]}, 5)]


def alone(executor, requests) -> list[dict]:
    return [outcome(executor.run(inputs, seed=seed)) for inputs, seed in requests]


@pytest.fixture(scope="module")
def omni(checkpoint, media):
    executor = loaded(load_graph("qwen3_omni", overrides=OMNI), checkpoint)
    want = alone(executor, omni_requests(media))
    assert all(len(w["codes"]) == 4 for w in want)  # no Talker stopped early: every run speaks through the mix
    assert len({tuple(w["tokens"]) for w in want}) == len(want)
    assert len(want[-1]["prompt"]) > 256  # prefilled in chunks
    yield executor, want
    executor.shutdown()


@pytest.fixture(scope="module")
def captioner(checkpoint, media):
    executor = loaded(load_graph("captioner", overrides=CAPTIONER), checkpoint)
    yield executor, alone(executor, caption_requests(media))
    executor.shutdown()


def gate_batched_stages(executor) -> dict[str, list[int]]:
    """Every batching node's first batch waits for a full batch queued behind it (each such stage must see at
    least 2 + MAX_BATCH runs in the mix); -> each node's batch sizes."""
    from omnigraph.nodes.code_predictor.server import FrameItem
    from omnigraph.nodes.talker.server import Step

    queued, nodes, sizes = 1 + MAX_BATCH, executor.nodes, {}
    for name in ("mel", "audio_encoder", "vision_encoder"):
        if name in nodes:
            sizes[name] = hold_first_batch(nodes[name]._batcher, queued)
    if "talker" in nodes:
        # The held Talker batch holds its server, so no other run is prefilled meanwhile: the code predictor's
        # gate first makes sure enough runs were, one more than needed in case one of them is cancelled.
        sizes["talker"] = hold_first_batch(nodes["talker"]._server._batcher, queued, Step)
        sizes["code_predictor"] = hold_first_batch(nodes["code_predictor"]._server._batcher, queued + 1, FrameItem)
        sizes["code2wav"] = hold_first_batch(nodes["code2wav"].streams.batcher, queued)
    return sizes


def spoken_requests(checkpoint) -> list[tuple[dict, int]]:
    image = run_node("media_decode", {"path": FilePath(str(PICTURE))}, {"expect": "image"})["image"]
    return [({"chat": two_image_prompt(checkpoint, "Compare the two.")}, 7),
            ({"chat": two_image_prompt(checkpoint, "Which one is flipped, and why?")}, 8),
            ({"chat": chat(checkpoint, text="Say hello.")}, 9),
            ({"chat": chat(checkpoint, image=image, text="And this one?")}, 10)]


def assert_all_same(runs, want: list[dict], what: str) -> None:
    for i, (run, w) in enumerate(zip(runs, want, strict=True)):
        assert_same(outcome(run.result(WAIT)), w, f"{what} run {i}")


def test_concurrent_mixes_equal_each_run_alone(checkpoint, media, omni, captioner):
    """Three executors at once, each with more runs than max_batch: sampled qwen3_omni requests of every
    modality, with a missing file, a corrupt image, a too-short clip and a run cancelled in the Thinker among
    them; sampled captions (another temperature, top-k and budget) with a corrupt file; greedy spoken replies
    with other Talker settings, prompts with two images, and a run cancelled after its first audio chunk.
    Then the same survivors once more, started together with no gate (the scheduling as it comes)."""
    (ex, want), (cap, want_captions) = omni, captioner
    spoken = loaded(graph_from_yaml(PROMPTED, overrides=SPOKEN), checkpoint)
    requests, captions, speech = omni_requests(media), caption_requests(media), spoken_requests(checkpoint)
    want_spoken = alone(spoken, speech)
    gates = {"omni": ThinkerGate(ex.nodes["thinker"], len(requests) + 1, hold_victim=True),
             "captions": ThinkerGate(cap.nodes["thinker"], len(captions)),
             "spoken": ThinkerGate(spoken.nodes["thinker"], len(speech) + 1)}
    sizes = {f"{name} {node}": batches for name, executor in [("omni", ex), ("captions", cap), ("spoken", spoken)]
             for node, batches in gate_batched_stages(executor).items()}

    runs = [ex.start(inputs, seed=seed) for inputs, seed in requests[:3]]
    corrupt = ex.start({"image": media["corrupt.png"], "text": "What is this?"}, seed=11)
    with pytest.raises(UserError, match="missing.wav' does not exist"):
        ex.start({"audio": media["missing"]})
    click = ex.start({"audio": media["click.wav"]}, seed=12)
    runs += [ex.start(inputs, seed=seed) for inputs, seed in requests[3:]]
    runs.append(ex.start({"text": "Count to ten, slowly."}, seed=20))
    caption_runs = [cap.start(inputs, seed=seed) for inputs, seed in captions[:2]]
    bad_caption = cap.start({"audio": media["corrupt.wav"]}, seed=13)
    caption_runs += [cap.start(inputs, seed=seed) for inputs, seed in captions[2:]]
    spoken_runs = [spoken.start(inputs, seed=seed) for inputs, seed in speech[:2]]
    hushed = spoken.start({"chat": chat(checkpoint, text="Tell me a long story.")}, seed=21)
    spoken_runs += [spoken.start(inputs, seed=seed) for inputs, seed in speech[2:]]

    assert gates["omni"].victim.wait(WAIT)  # one run is mid-stream in the Thinker, every other still in it
    by_seed = {seed: run for run, seed in zip(runs, [*(seed for _, seed in requests), 20], strict=True)}
    cancelled = by_seed.pop(gates["omni"].victim_seed)
    cancelled.cancel()
    assert next(event for event in hushed.events() if event.name == "audio")
    hushed.cancel()  # after its first audio chunk: its Talker, code predictor and Code2Wav slots are left mid-reply
    for run in (cancelled, hushed):
        with pytest.raises(RunCancelled):
            run.result(WAIT)
    with pytest.raises(NodeFailed, match="corrupt or truncated PNG") as failed:
        corrupt.result(WAIT)
    assert failed.value.node == "decode_image"
    with pytest.raises(NodeFailed, match="too short for the mel frontend") as failed:
        click.result(WAIT)
    assert failed.value.node == "mel" and "click.wav" in str(failed.value)
    with pytest.raises(NodeFailed, match="corrupt.wav") as failed:
        bad_caption.result(WAIT)
    assert failed.value.node == "decode"

    expected = {seed: w for (_, seed), w in zip(requests, want)}
    for seed, run in by_seed.items():
        if seed in expected:
            assert_same(outcome(run.result(WAIT)), expected[seed], f"qwen3_omni run of seed {seed}")
    assert_all_same(caption_runs, want_captions, "captioner")
    assert_all_same(spoken_runs, want_spoken, "spoken")
    for name, gate in gates.items():  # every run was waiting together, and max_batch decided who joined when
        assert gate.engine.peak_batch == MAX_BATCH, name
    for executor in (ex, spoken):  # the cancelled runs' Talker and Code2Wav slots were freed with the others'
        wait_until(lambda: executor.nodes["talker"]._server.live_slots == 0, "the Talker's slots are free")
        wait_until(lambda: executor.nodes["code2wav"].streams._state is None, "the Code2Wav streams are free")
    assert {name for name, batches in sizes.items() if not batches} == {"spoken mel", "spoken audio_encoder"}
    for name, batches in sizes.items():
        assert not batches or max(batches) == MAX_BATCH, (name, batches)

    again = [(ex.start(i, seed=s) for i, s in requests), (cap.start(i, seed=s) for i, s in captions),
             (spoken.start(i, seed=s) for i, s in speech)]
    again = [list(started) for started in again]  # all started before any is read
    for runs, w, what in zip(again, [want, want_captions, want_spoken], ["omni", "captioner", "spoken"]):
        assert_all_same(runs, w, f"ungated {what}")
    spoken.shutdown()


def test_parallel_omnigraph_runs_equal_the_same_runs_in_process(checkpoint, media, omni, captioner, tmp_path):
    """Two `omnigraph run` processes at once (with --set '*.max_batch=2') give the outputs of the same runs made
    in this process alone."""
    (inputs, seed), want = omni_requests(media)[2], omni[1][2]
    (cap_inputs, cap_seed), want_caption = caption_requests(media)[1], captioner[1][1]
    common = ["--checkpoint", str(checkpoint.path), "--device", "cpu", "--set", f"*.max_batch={MAX_BATCH}"]
    commands = {
        "omni": ["qwen3_omni", *[f"--input={k}={v}" for k, v in inputs.items()], "--seed", str(seed),
                 "--max-new-tokens", "5", "--max-frames", "4"],
        "caption": ["captioner", *[f"--input={k}={v}" for k, v in cap_inputs.items()], "--seed", str(cap_seed),
                    "--max-new-tokens", "6", "--set", "thinker.temperature=1.3", "--set", "thinker.top_k=30"],
    }
    processes = {name: subprocess.Popen([sys.executable, "-m", "omnigraph", "run", *args, *common,
                                         "--out", str(tmp_path / name)], stderr=subprocess.PIPE, text=True)
                 for name, args in commands.items()}
    for process in processes.values():
        _, err = process.communicate(timeout=WAIT)
        assert process.returncode == 0, err
    result = json.loads((tmp_path / "omni" / "result.json").read_text())
    wave, _ = sf.read(tmp_path / "omni" / "audio.wav", dtype="float32")
    got = {"prompt": result["prompt_token_ids"], "tokens": result["thinker_token_ids"],
           "codes": result["codec_codes"], "wave": torch.from_numpy(wave)}
    assert_same(got, want, "omnigraph run qwen3_omni")
    caption = json.loads((tmp_path / "caption" / "result.json").read_text())
    assert caption["prompt_token_ids"] == want_caption["prompt"]
    assert caption["thinker_token_ids"] == want_caption["tokens"]
