"""qwen2_5_interleaver: placeholder expansion, embedding scatter and TMRoPE positions, against the oracle's
`get_rope_index` on hand-built prompts (random encoder outputs with the right token counts and grids)."""
import pytest
import torch
from oracle25 import build_model, save_checkpoint

from omnigraph.nodes.qwen2_5_interleaver.expand import build_thinker_prompt
from omnigraph.nodes.qwen2_5_interleaver.node import Qwen25Interleaver
from omnigraph.nodes.qwen2_5.tmrope import TmropeIds, chunk_runs
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.errors import UserError
from omnigraph.runtime.media_payloads import AudioEmbeddings, MediaItem, PromptTokens, VisionEmbeddings
from omnigraph.testing import run_node

IM_START, IM_END, NL, USER = 151644, 151645, 198, 872
AUDIO, IMAGE, VIDEO = 151646, 151655, 151656
A_BOS, A_EOS, V_BOS, V_EOS = 151647, 151648, 151652, 151653
IDS = TmropeIds()
D = 8


def prompt_of(*items, text=(100, 101)):
    """ChatML user turn with one wrapped placeholder per item ("audio", "image", "video", "video+audio")."""
    ids, media, counts = [IM_START, USER, NL], [], {"audio": 0, "image": 0, "video": 0}
    for item in items:
        kind = item.split("+")[0]
        ids += {"audio": [A_BOS, AUDIO, A_EOS], "image": [V_BOS, IMAGE, V_EOS], "video": [V_BOS, VIDEO, V_EOS]}[kind]
        media.append(MediaItem(kind, counts[kind], audio_in_video=item == "video+audio"))
        counts[kind] += 1
    return PromptTokens(ids=torch.tensor(ids + list(text) + [IM_END, NL]), media=tuple(media))


def frames_for(tokens: int) -> int:
    """Mel frames that give `tokens` audio tokens (reference section 1: 4n frames -> n tokens)."""
    return 4 * tokens


@pytest.fixture(scope="module")
def thinker():
    """The oracle Thinker on the meta device: get_rope_index reads only its config."""
    from transformers import Qwen2_5OmniConfig
    from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniThinkerForConditionalGeneration

    from oracle25 import config_dict

    with torch.device("meta"):
        return Qwen2_5OmniThinkerForConditionalGeneration(Qwen2_5OmniConfig(**config_dict()).thinker_config)


def built(prompt, audio_tokens=(), grids=(), kinds=(), spg=()):
    g = torch.Generator().manual_seed(0)
    audio = None if not audio_tokens else AudioEmbeddings(torch.randn(sum(audio_tokens), D, generator=g),
                                                          tuple(audio_tokens))
    n = sum(t * h * w // 4 for t, h, w in grids)
    vision = None if not grids else VisionEmbeddings(torch.randn(n, D, generator=g), (), tuple(grids), tuple(kinds),
                                                     tuple(spg) or tuple(0.0 for _ in grids))
    table = torch.randn(152064, D, generator=g)
    return build_thinker_prompt(prompt, audio, vision, table, IDS), audio, vision, table


def oracle_positions(thinker, p, audio_tokens=(), grids=(), kinds=(), spg=(), aiv=False):
    images = [g for g, k in zip(grids, kinds) if k == "image"]
    videos = [g for g, k in zip(grids, kinds) if k == "video"]
    video_spg = [s for s, k in zip(spg, kinds) if k == "video"]
    ids = p.input_ids[None]
    positions, delta = thinker.get_rope_index(
        ids, torch.tensor(images) if images else None, torch.tensor(videos) if videos else None,
        torch.ones_like(ids), aiv, torch.tensor([frames_for(n) for n in audio_tokens]) if audio_tokens else None,
        torch.tensor(video_spg) if video_spg else None)
    return positions[:, 0], int(delta)


CASES = {
    "text": dict(items=()),
    "audio": dict(items=("audio",), audio_tokens=(9,)),
    "image": dict(items=("image",), grids=((1, 4, 6),), kinds=("image",)),
    "two_images": dict(items=("image", "image"), grids=((1, 4, 6), (1, 6, 4)), kinds=("image", "image")),
    "video": dict(items=("video",), grids=((3, 4, 4),), kinds=("video",), spg=(1.0,)),
    "video_fractional": dict(items=("video",), grids=((3, 4, 4),), kinds=("video",), spg=(0.6,)),
    "audio_image_video": dict(items=("audio", "image", "video"), audio_tokens=(9,), grids=((1, 4, 6), (2, 4, 4)),
                              kinds=("image", "video"), spg=(0.5, 0.5)),
    # 3 s of video (frames 1 s apart) with 75 audio tokens: two 2-second chunks of each
    "audio_in_video": dict(items=("video+audio",), audio_tokens=(75,), grids=((3, 4, 4),), kinds=("video",),
                           spg=(1.0,), aiv=True),
    # frames 4 s apart: runs jump over whole chunks
    "audio_in_video_sparse_frames": dict(items=("video+audio",), audio_tokens=(160,), grids=((4, 4, 6),),
                                         kinds=("video",), spg=(4.0,), aiv=True),
    # audio shorter than the video, fractional seconds per grid, an image before
    "image_then_audio_in_video": dict(items=("image", "video+audio"), audio_tokens=(30,), grids=((1, 4, 4), (5, 4, 4)),
                                      kinds=("image", "video"), spg=(0.0, 0.7), aiv=True),
}


@pytest.mark.parametrize("name", list(CASES))
def test_positions_equal_get_rope_index(thinker, name):
    case = dict(CASES[name])
    items, aiv = case.pop("items"), case.pop("aiv", False)
    p, *_ = built(prompt_of(*items), **case)
    positions, delta = oracle_positions(thinker, p, aiv=aiv, **case)
    assert p.positions.dtype == torch.long
    assert torch.equal(p.positions, positions)
    assert p.rope_delta == delta


def test_audio_in_video_layout_follows_the_reference_example():
    """Reference section 4.4 D: grid (3,4,4), 1 s per grid, 75 audio tokens."""
    prompt = PromptTokens(ids=torch.tensor([100, V_BOS, VIDEO, V_EOS, 101]),
                          media=(MediaItem("video", 0, audio_in_video=True),))
    p, *_ = built(prompt, audio_tokens=(75,), grids=((3, 4, 4),), kinds=("video",), spg=(1.0,))
    assert p.input_ids.tolist() == ([100, V_BOS, A_BOS] + [VIDEO] * 8 + [AUDIO] * 50 + [VIDEO] * 4 + [AUDIO] * 25
                                    + [A_EOS, V_EOS, 101])
    t = p.positions[0].tolist()
    assert t[:3] == [0, 1, 1] and t[3:11] == [2] * 4 + [27] * 4 and t[11:61] == list(range(2, 52))
    assert t[61:65] == [52] * 4 and t[65:90] == list(range(52, 77)) and t[90:] == [77, 77, 78]
    assert p.rope_delta == -14


def test_chunk_runs_start_one_run_per_boundary_crossed():
    assert chunk_runs([0, 100, 150], 50, 0) == [(0, 1), (1, 2), (2, 3)]
    assert chunk_runs(list(range(75)), 50, 0) == [(0, 50), (50, 75)]
    assert chunk_runs([5, 10], 50, 5) == [(0, 2)]


def test_embeddings_are_scattered_in_sequence_order():
    p, audio, vision, table = built(prompt_of("audio", "video+audio", "image"), audio_tokens=(5, 60),
                                    grids=((4, 4, 4), (1, 4, 6)), kinds=("video", "image"), spg=(1.0, 0.0))
    ids = p.input_ids
    assert torch.equal(p.embeds[ids == AUDIO], audio.embeddings)  # clip 0 then the video's track, in order
    assert torch.equal(p.embeds[(ids == VIDEO) | (ids == IMAGE)], vision.embeddings)
    text = (ids != AUDIO) & (ids != VIDEO) & (ids != IMAGE)
    assert torch.equal(p.embeds[text], table[ids[text]])
    assert p.visual_mask is None and p.deepstack == ()


@pytest.mark.parametrize("bad, message", [
    (dict(audio_tokens=()), "1 audio item"),
    (dict(audio_tokens=(5, 6)), "2 audio embedding"),
])
def test_mismatched_media_is_a_user_error(bad, message):
    with pytest.raises(UserError, match=message):
        built(prompt_of("audio"), **bad)


def test_a_media_list_that_disagrees_with_the_placeholders_is_a_user_error():
    image = dict(grids=((1, 4, 4),), kinds=("image",))
    wrong_kind = PromptTokens(prompt_of("image").ids, (MediaItem("audio", 0),))
    with pytest.raises(UserError, match=r"placeholder tokens \(1 image\) do not match its media list \(1 audio\)"):
        built(wrong_kind, **image)
    wrong_index = PromptTokens(prompt_of("image").ids, (MediaItem("image", 3),))
    with pytest.raises(UserError, match="image item 3 has no vision embeddings"):
        built(wrong_index, **image)


def test_audio_in_video_without_its_wrappers_is_a_user_error():
    prompt = PromptTokens(ids=torch.tensor([100, VIDEO, 101]), media=(MediaItem("video", 0, audio_in_video=True),))
    with pytest.raises(UserError, match="must be written <\\|vision_bos\\|><\\|VIDEO\\|><\\|vision_eos\\|>"):
        built(prompt, audio_tokens=(10,), grids=((2, 4, 4),), kinds=("video",), spg=(1.0,))


def test_node_reads_the_embed_table_and_ids_from_the_checkpoint(tmp_path):
    model = build_model(None)
    ckpt = Checkpoint.open(save_checkpoint(model, tmp_path / "ckpt"))
    prompt = prompt_of("image")
    vision = VisionEmbeddings(torch.randn(6, 64), (), ((1, 4, 6),), ("image",), (0.0,))
    out = run_node(Qwen25Interleaver, {"prompt": prompt, "vision": vision}, checkpoint=ckpt)
    p = out["thinker_prompt"]
    table = model.thinker.get_input_embeddings().weight
    text = p.input_ids != IMAGE
    torch.testing.assert_close(p.embeds[text], table[p.input_ids[text]].detach())
    assert out["input_ids"].ids == tuple(p.input_ids.tolist())
