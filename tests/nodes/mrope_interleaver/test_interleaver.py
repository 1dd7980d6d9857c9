"""mrope_interleaver: placeholder expansion, embedding scatter and TM-RoPE positions, against the oracle's
get_rope_index on hand-built prompts (fake encoder outputs with the right token counts and grids)."""
from dataclasses import dataclass, field

import pytest
import torch
from oracle import build_model, save_checkpoint

from omnigraph.nodes.mrope_interleaver.node import MropeInterleaver
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.errors import UserError
from omnigraph.nodes.common.media_payloads import AudioEmbeddings, MediaItem, VisionEmbeddings
from omnigraph.nodes.qwen.payloads import PromptTokens
from omnigraph.testing import run_node

IM_START, IM_END, NL, USER, ASSISTANT = 151644, 151645, 198, 872, 77091
AUDIO, IMAGE, VIDEO = 151675, 151655, 151656
A_START, A_END, V_START, V_END = 151669, 151670, 151652, 151653
D = 64


def audio_tokens(frames: int) -> int:
    """Audio encoder tokens for `frames` mel frames (reference section 1)."""
    r = frames % 100
    f1 = (r - 1) // 2 + 1
    f2 = (f1 - 1) // 2 + 1
    return ((f2 - 1) // 2 + 1 if r else 0) + 13 * (frames // 100)


def merged_audio_video(grid, spg, n_audio):
    """The processor's merge: video token timestamps k*spg*13 vs audio j, video first on ties."""
    t, h, w = grid
    video = [k * spg * 13 for k in range(t) for _ in range(h * w // 4)]
    out, i, j = [], 0, 0
    while i < len(video) and j < n_audio:
        if video[i] <= j:
            out.append(VIDEO)
            i += 1
        else:
            out.append(AUDIO)
            j += 1
    return out + [VIDEO] * (len(video) - i) + [AUDIO] * (n_audio - j)


@dataclass
class Case:
    """A prompt built item by item: `ids` with one placeholder per item, `expanded` as the processor would."""

    ids: list = field(default_factory=lambda: [IM_START, USER, NL])
    expanded: list = field(default_factory=lambda: [IM_START, USER, NL])
    media: list = field(default_factory=list)
    frames: list = field(default_factory=list)  # mel frames per audio clip
    vision: list = field(default_factory=list)  # (kind, grid, seconds per grid) per vision item, prompt order

    def text(self, *tokens):
        self.ids += tokens
        self.expanded += tokens
        return self

    def audio(self, frames):
        self.frames.append(frames)
        self.media.append(MediaItem("audio", sum(m.kind == "audio" for m in self.media)))
        self.ids += [A_START, AUDIO, A_END]
        self.expanded += [A_START] + [AUDIO] * audio_tokens(frames) + [A_END]
        return self

    def visual(self, kind, grid, spg=0.0, frames=None):
        n = sum(m.kind == kind for m in self.media)
        self.media.append(MediaItem(kind, n, audio_in_video=frames is not None))
        self.vision.append((kind, grid, spg))
        pad = IMAGE if kind == "image" else VIDEO
        self.ids += [V_START, pad, V_END]
        if frames is None:
            self.expanded += [V_START] + [pad] * (grid[0] * grid[1] * grid[2] // 4) + [V_END]
        else:
            self.frames.append(frames)
            inner = merged_audio_video(grid, spg, audio_tokens(frames))
            self.expanded += [V_START, A_START] + inner + [A_END, V_END]
        return self

    def end(self):
        return self.text(500, 1000, IM_END, NL, IM_START, ASSISTANT, NL)


def cases():
    return {
        "text": Case().text(9707, 11, 1879).end(),
        "audio": Case().audio(300).text(3555).end(),
        "image": Case().text(1, 2).visual("image", (1, 4, 6)).end(),
        "two_images": Case().visual("image", (1, 6, 8)).text(5).visual("image", (1, 4, 4)).end(),
        "video": Case().visual("video", (3, 4, 6), 2.0).end(),
        "video_fractional": Case().visual("video", (3, 4, 4), 2 / 3).text(7).end(),
        "image_audio": Case().audio(199).visual("image", (1, 4, 4)).end(),
        "video_image_audio": Case().visual("video", (2, 4, 4), 0.5).visual("image", (1, 8, 4)).audio(101).end(),
        "audio_in_video": Case().text(1, 2).visual("video", (2, 4, 4), 2.0, frames=300).end(),
        "audio_in_video_long": Case().visual("video", (3, 4, 8), 2 / 3, frames=250).text(3).end(),
        # frames wider than the clip is long: the text after follows the audio tail, not the video's widest position
        "audio_in_video_wide": Case().visual("video", (1, 4, 60), 2.0, frames=101).text(3).end(),
    }


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    model = build_model(seed=1)
    path = save_checkpoint(model, tmp_path_factory.mktemp("interleaver") / "ckpt")
    node = MropeInterleaver()
    node.load("cpu", Checkpoint.open(path))
    return model, node, path


def encoder_outputs(case: Case, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = tuple(audio_tokens(f) for f in case.frames)
    audio = AudioEmbeddings(torch.randn(sum(tokens), D, generator=g), tokens) if tokens else None
    # the vision payload lists every image, then every video (prompt order within each kind)
    items = [v for v in case.vision if v[0] == "image"] + [v for v in case.vision if v[0] == "video"]
    vision = None
    if items:
        n = sum(t * h * w // 4 for _, (t, h, w), _ in items)
        vision = VisionEmbeddings(torch.randn(n, D, generator=g), (torch.randn(n, D, generator=g),
                                  torch.randn(n, D, generator=g)), tuple(v[1] for v in items),
                                  tuple(v[0] for v in items), tuple(v[2] for v in items))
    return audio, vision, items


def oracle_rope_index(model, case: Case):
    grids = lambda kind: torch.tensor([v[1] for v in case.vision if v[0] == kind]) if any(  # noqa: E731
        v[0] == kind for v in case.vision) else None
    videos = [v for v in case.vision if v[0] == "video"]
    aiv = any(m.audio_in_video for m in case.media)
    ids = torch.tensor([case.expanded])
    pos, delta = model.thinker.get_rope_index(
        ids, grids("image"), grids("video"), torch.ones_like(ids), aiv,
        torch.tensor(case.frames) if case.frames else None,
        torch.tensor([v[2] for v in videos], dtype=torch.float32) if videos else None)
    return pos[:, 0], delta


@pytest.mark.parametrize("name", list(cases()))
def test_expansion_positions_and_scatter_match_the_oracle(setup, name):
    model, node, _ = setup
    case = cases()[name]
    audio, vision, items = encoder_outputs(case)
    prompt = PromptTokens(torch.tensor(case.ids), tuple(case.media))
    out = node.process(prompt=prompt, audio=audio, vision=vision)["thinker_prompt"]
    assert out.input_ids.tolist() == case.expanded
    ref_pos, ref_delta = oracle_rope_index(model, case)
    assert torch.equal(out.positions, ref_pos.float())
    # generated tokens follow the last prompt position (transformers' generate); get_rope_index's delta counts from
    # the largest, which is the same unless an audio-in-video block ends below its widest video position
    last = float(ref_pos[:, -1].max()) + 1 - len(case.expanded)
    assert out.rope_delta == pytest.approx(last, abs=0) and out.positions.shape == (3, len(case.expanded))
    assert name == "audio_in_video_wide" or last == float(ref_delta)

    ids = out.input_ids
    table = model.thinker.model.get_input_embeddings().weight
    text = ~torch.isin(ids, torch.tensor([AUDIO, IMAGE, VIDEO]))
    assert torch.equal(out.embeds[text], table[ids[text]])
    if audio is not None:
        assert torch.equal(out.embeds[ids == AUDIO], audio.embeddings)
    if vision is not None:
        # rows of each vision item, reordered into the order the items appear in the prompt
        offsets, start = [], 0
        for _, (t, h, w), _ in items:
            offsets.append((start, t * h * w // 4))
            start += t * h * w // 4
        seen = {"image": 0, "video": 0}
        rows = []
        for kind, _, _ in case.vision:
            index = [i for i, it in enumerate(items) if it[0] == kind][seen[kind]]
            seen[kind] += 1
            rows.append(torch.arange(offsets[index][0], sum(offsets[index])))
        rows = torch.cat(rows)
        assert torch.equal(out.visual_mask, (ids == IMAGE) | (ids == VIDEO))
        assert torch.equal(out.embeds[out.visual_mask], vision.embeddings[rows])
        assert all(torch.equal(a, b[rows]) for a, b in zip(out.deepstack, vision.deepstack, strict=True))
    else:
        assert out.visual_mask is None and out.deepstack == ()
    assert out.layout.audio_tokens == tuple(audio_tokens(f) for f in case.frames)
    assert out.layout.video_grids == tuple(tuple(v[1]) for v in case.vision if v[0] == "video")


def test_media_list_may_be_omitted(setup):
    _, node, _ = setup
    case = cases()["image_audio"]
    audio, vision, _ = encoder_outputs(case)
    out = node.process(prompt=PromptTokens(torch.tensor(case.ids)), audio=audio, vision=vision)["thinker_prompt"]
    assert out.input_ids.tolist() == case.expanded


def test_count_mismatches_are_clear_errors(setup):
    _, node, _ = setup
    case = cases()["two_images"]
    audio, vision, _ = encoder_outputs(case)
    one_placeholder = PromptTokens(torch.tensor(case.ids[:case.ids.index(IMAGE) + 1] + [V_END]))
    with pytest.raises(UserError, match="1 image item.*2 image embedding"):
        node.process(prompt=one_placeholder, vision=vision)
    with pytest.raises(UserError, match=r"placeholder tokens \(2 image\) do not match its media list \(1 image\); "
                                        r".*one <\|audio_pad\|>/<\|image_pad\|>/<\|video_pad\|> "
                                        r"\(ids 151675/151655/151656\) per media item"):
        node.process(prompt=PromptTokens(torch.tensor(case.ids), (MediaItem("image", 0),)), vision=vision)
    case = cases()["audio"]
    audio, _, _ = encoder_outputs(case)
    short = AudioEmbeddings(audio.embeddings[:-1], audio.tokens)
    with pytest.raises(UserError, match="rows but tokens"):
        node.process(prompt=PromptTokens(torch.tensor(case.ids)), audio=short)
    with pytest.raises(UserError, match="1 audio item.*0 audio embedding"):
        node.process(prompt=PromptTokens(torch.tensor(case.ids)))
    case = cases()["audio_in_video"]
    audio, vision, _ = encoder_outputs(case)
    bare = [t for t in case.ids if t not in (V_START, V_END)]  # a video pad without its vision wrappers
    with pytest.raises(UserError, match="must be written"):
        node.process(prompt=PromptTokens(torch.tensor(bare), tuple(case.media)), audio=audio, vision=vision)


def test_runs_as_a_graph_node(setup):
    _, _, path = setup
    case = cases()["image"]
    _, vision, _ = encoder_outputs(case)
    out = run_node("mrope_interleaver", {"prompt": PromptTokens(torch.tensor(case.ids)), "vision": vision},
                   checkpoint=path)["thinker_prompt"]
    assert out.input_ids.tolist() == case.expanded
    assert out.rope_delta == -3  # 6 image tokens on 3 positions (a 2x3 merged grid)
