"""Audio + image + video prompts through mrope_interleaver and thinker against the oracle's full Thinker
(encoder outputs taken from the oracle's own towers): after-scatter embeddings, 3D positions, deepstack,
logits and hidden states at every position, the Talker's per-step trace, and 32 greedy tokens."""
import pytest
import torch
from thinker_oracle import WORDS, saved_oracle, with_width

from omnigraph.nodes.mrope_interleaver.node import MropeInterleaver
from omnigraph.nodes.thinker.model import HiddenTrace, generate
from omnigraph.nodes.thinker.weights import load_thinker
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.nodes.common.media_payloads import AudioEmbeddings, MediaItem, VisionEmbeddings
from omnigraph.nodes.qwen.payloads import PromptTokens
from omnigraph.testing import run_node

IM_START, IM_END, NL = 151644, 151645, 198
AUDIO, IMAGE, VIDEO, A_START, A_END, V_START, V_END = 151675, 151655, 151656, 151669, 151670, 151652, 151653
ACCEPT = 2  # hidden_states[2]: output of layer 1, where the second deepstack level is not yet added


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    path = tmp_path_factory.mktemp("mm") / "ckpt"
    oracle = saved_oracle(with_width(64, dict(num_hidden_layers=3), ACCEPT), path, seed=3)
    ckpt = Checkpoint.open(path)
    interleaver = MropeInterleaver()
    interleaver.load("cpu", ckpt)
    return oracle, ckpt, interleaver, load_thinker(ckpt)


def media_inputs(audio_in_video: bool):
    g = torch.Generator().manual_seed(5)
    frames = 250 if not audio_in_video else 300
    inputs = dict(input_features=torch.randn(1, 128, frames, generator=g),
                  feature_attention_mask=torch.ones(1, frames, dtype=torch.long),
                  pixel_values_videos=torch.randn(2 * 4 * 4, 1536, generator=g),
                  video_grid_thw=torch.tensor([[2, 4, 4]]), video_second_per_grid=torch.tensor([2.0]))
    if not audio_in_video:
        inputs |= dict(pixel_values=torch.randn(4 * 6, 1536, generator=g), image_grid_thw=torch.tensor([[1, 4, 6]]))
    return inputs


def encoder_payloads(oracle, inputs):
    th = oracle.thinker
    cat = lambda parts: torch.cat(list(parts))  # noqa: E731
    with torch.no_grad():
        audio = th.get_audio_features(inputs["input_features"], inputs["feature_attention_mask"]).last_hidden_state
        outs = []
        if "pixel_values" in inputs:
            outs.append(("image", th.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"]),
                         inputs["image_grid_thw"][0], 0.0))
        outs.append(("video", th.get_video_features(inputs["pixel_values_videos"], inputs["video_grid_thw"]),
                     inputs["video_grid_thw"][0], 2.0))
    vision = VisionEmbeddings(
        torch.cat([cat(o.pooler_output) for _, o, _, _ in outs]),
        tuple(torch.cat([cat(o.deepstack_features[lv]) for _, o, _, _ in outs]) for lv in range(2)),
        tuple(tuple(grid.tolist()) for _, _, grid, _ in outs), tuple(k for k, _, _, _ in outs),
        tuple(s for _, _, _, s in outs))
    return AudioEmbeddings(audio, (audio.shape[0],)), vision


def prompt(audio_in_video: bool, n_audio: int):
    """Unexpanded ids (one placeholder per item) and the processor's expansion, by hand."""
    head, tail = [IM_START, 872, NL], [*WORDS, IM_END, NL, IM_START, 77091, NL]
    if audio_in_video:
        video = [VIDEO] * 4
        inner = video + [AUDIO] * 26 + video + [AUDIO] * (n_audio - 26)  # grids at t=0 and 26 (2 s * 13)
        ids = head + [V_START, VIDEO, V_END] + tail
        expanded = head + [V_START, A_START] + inner + [A_END, V_END] + tail
        return ids, expanded, (MediaItem("video", 0, audio_in_video=True),)
    ids = head + [A_START, AUDIO, A_END, V_START, VIDEO, V_END, V_START, IMAGE, V_END] + tail
    expanded = (head + [A_START] + [AUDIO] * n_audio + [A_END, V_START] + [VIDEO] * 8 + [V_END, V_START]
                + [IMAGE] * 6 + [V_END] + tail)
    return ids, expanded, (MediaItem("audio", 0), MediaItem("video", 0), MediaItem("image", 0))


@pytest.mark.parametrize("audio_in_video", [False, True])
def test_multimodal_prompt_matches_oracle(setup, audio_in_video):
    oracle, ckpt, interleaver, ours = setup
    inputs = media_inputs(audio_in_video)
    audio, vision = encoder_payloads(oracle, inputs)
    ids, expanded, media = prompt(audio_in_video, audio.tokens[0])
    tp = interleaver.process(prompt=PromptTokens(torch.tensor(ids), media), audio=audio,
                             vision=vision)["thinker_prompt"]
    assert tp.input_ids.tolist() == expanded
    x = torch.tensor([expanded])
    with torch.inference_mode():
        ref = oracle.thinker(input_ids=x, attention_mask=torch.ones_like(x), use_audio_in_video=audio_in_video,
                             output_hidden_states=True, **inputs)
        ref_pos, ref_delta = oracle.thinker.get_rope_index(
            x, inputs.get("image_grid_thw"), inputs["video_grid_thw"], torch.ones_like(x), audio_in_video,
            inputs["feature_attention_mask"].sum(-1), inputs["video_second_per_grid"])
        trace = HiddenTrace(ACCEPT)
        hidden = ours.hidden(tp.embeds[None], tp.positions[:, None], None, tp.visual_mask[None], tp.deepstack, trace)
        logits = ours.head(hidden)
    assert torch.equal(tp.positions, ref_pos[:, 0]) and tp.rope_delta == float(ref_delta)
    torch.testing.assert_close(tp.embeds, ref.hidden_states[0][0], atol=0, rtol=0)
    torch.testing.assert_close(trace.hidden[0], ref.hidden_states[ACCEPT], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(hidden, ref.hidden_states[-1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits, ref.logits, atol=1e-5, rtol=1e-5)
    assert tp.visual_mask.sum() == 8 + (0 if audio_in_video else 6) and len(tp.deepstack) == 2


def test_greedy_generation_and_talker_trace_match_oracle(setup):
    oracle, ckpt, interleaver, ours = setup
    inputs = media_inputs(False)
    audio, vision = encoder_payloads(oracle, inputs)
    ids, expanded, media = prompt(False, audio.tokens[0])
    tp = interleaver.process(prompt=PromptTokens(torch.tensor(ids), media), audio=audio,
                             vision=vision)["thinker_prompt"]
    x = torch.tensor([expanded])
    with torch.inference_mode():
        ref = oracle.thinker.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=32,
                                      do_sample=False, eos_token_id=IM_END, output_hidden_states=True,
                                      return_dict_in_generate=True, **inputs)
    ref_tokens = ref.sequences[0, x.shape[1]:].tolist()
    assert len(ref_tokens) == 32 and IM_END not in ref_tokens
    out = run_node("thinker", {"thinker_prompt": tp}, {"greedy": True, "max_new_tokens": 32}, checkpoint=ckpt)
    assert [t.id for t in out["tokens"]] == ref_tokens

    # what the Talker will read: hidden_states[0] and [accept] over prompt + generated - 1 positions
    trace = HiddenTrace(ACCEPT)
    ours_tokens = list(generate(ours, tp.embeds[None], tp.positions[:, None], tp.rope_delta,
                                lambda logits, prev: logits.argmax(-1), 32, (IM_END,), None,
                                tp.visual_mask[None], tp.deepstack, trace))
    assert ours_tokens == ref_tokens
    embeds, hidden = trace.stacked()
    ref_embeds = torch.cat([step[0] for step in ref.hidden_states], 1)
    ref_hidden = torch.cat([step[ACCEPT] for step in ref.hidden_states], 1)
    assert embeds.shape[1] == x.shape[1] + 31
    torch.testing.assert_close(embeds, ref_embeds, atol=0, rtol=0)
    torch.testing.assert_close(hidden, ref_hidden, atol=1e-5, rtol=1e-5)
