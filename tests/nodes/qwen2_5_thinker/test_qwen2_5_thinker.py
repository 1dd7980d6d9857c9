"""The Qwen2.5-Omni Thinker against the oracle on both tiny configs: logits and the final-normed hidden states
of the prompt, greedy tokens equal to `thinker.generate`, the Talker's states equal to the `output_hidden_states`
entries of reference section 6.2, and runs batched equal to runs alone.

Media enter through the oracle's own encoders (audio, image, video) and our interleaver, so the prompts carry
real TMRoPE positions: an audio clip and an image, two images, and a 3 s video with its 3 s of audio.
"""
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import torch
from oracle25 import VARIANT, build_model, save_checkpoint

from omnigraph.nodes.common.engine import BatchingEngine, GenerationRequest
from omnigraph.nodes.common.sampling import SamplingParams
from omnigraph.nodes.qwen2_5.tmrope import TmropeIds
from omnigraph.nodes.qwen2_5_interleaver.expand import build_thinker_prompt
from omnigraph.nodes.qwen2_5_interleaver.node import Qwen25Interleaver
from omnigraph.nodes.qwen2_5_thinker.batch_model import Qwen25BatchModel, Qwen25Inputs
from omnigraph.nodes.qwen2_5_thinker.node import Qwen25Thinker
from omnigraph.nodes.qwen2_5_thinker.weights import key_table, load_thinker
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.context import RunContext, enter_run
from omnigraph.runtime.errors import CheckpointError, UserError
from omnigraph.nodes.common.media_payloads import AudioEmbeddings, MediaItem, VisionEmbeddings
from omnigraph.nodes.qwen.payloads import PromptTokens
from omnigraph.testing import run_node

IM_START, IM_END, NL, USER, ASSISTANT = 151644, 151645, 198, 872, 77091
AUDIO, IMAGE, VIDEO = 151646, 151655, 151656
A_BOS, A_EOS, V_BOS, V_EOS = 151647, 151648, 151652, 151653
WRAP = {"audio": [A_BOS, AUDIO, A_EOS], "image": [V_BOS, IMAGE, V_EOS], "video": [V_BOS, VIDEO, V_EOS]}
NEW_TOKENS = 10
WAIT = 120  # seconds: the bound on waiting for a condition (never reached unless something hangs)


@dataclass
class Media:
    """The media of one user turn, in prompt order (random encoder inputs of these sizes are made per test)."""

    items: tuple[str, ...] = ()  # "audio", "image", "video+audio"
    frames: tuple[int, ...] = ()  # mel frames per audio clip (a video's track included, in prompt order)
    grids: tuple[tuple[int, int, int], ...] = ()  # per image/video


PROMPTS = {
    "text": Media(),
    "audio_image": Media(("audio", "image"), (150,), ((1, 4, 6),)),
    "two_images": Media(("image", "image"), (), ((1, 4, 6), (1, 6, 4))),
    "audio_in_video": Media(("video+audio",), (300,), ((3, 4, 4),)),  # 3 s at 1 s per grid: two 2 s chunks each
}


@pytest.fixture(scope="module", params=["base", "variant"])
def pair(request, tmp_path_factory):
    oracle = build_model(None if request.param == "base" else VARIANT)
    ckpt = Checkpoint.open(save_checkpoint(oracle, tmp_path_factory.mktemp(request.param) / "ckpt"))
    return oracle, ckpt, load_thinker(ckpt)


def oracle_inputs(oracle, media: Media, text=(100, 101, 102)):
    """(our ThinkerPrompt, the oracle thinker's keyword arguments) of one user turn."""
    g = torch.Generator().manual_seed(len(media.items) + sum(media.frames))
    thinker = oracle.thinker
    ids, kinds, counts = [IM_START, USER, NL], [], {"audio": 0, "image": 0, "video": 0}
    for item in media.items:
        kind = item.split("+")[0]
        ids += WRAP[kind]
        kinds.append(MediaItem(kind, counts[kind], audio_in_video=item == "video+audio"))
        counts[kind] += 1
    ids += list(text) + [IM_END, NL, IM_START, ASSISTANT, NL]
    kwargs, audio, vision = {}, None, None
    with torch.no_grad():
        if media.frames:
            L = max(media.frames)
            feats = torch.randn(len(media.frames), 128, L, generator=g)
            mask = (torch.arange(L) < torch.tensor(media.frames)[:, None]).long()
            rows = thinker.get_audio_features(feats, mask).last_hidden_state
            tokens = tuple(((n - 1) // 2 + 1) // 2 for n in media.frames)
            audio = AudioEmbeddings(rows, tokens)
            kwargs |= dict(input_features=feats, feature_attention_mask=mask)
        if media.grids:
            kinds_v = [m.kind for m in kinds if m.kind != "audio"]
            pix = [torch.randn(t * h * w, 3 * 2 * 14 * 14, generator=g) for t, h, w in media.grids]
            rows, spg = [], []
            for kind, p, grid in zip(kinds_v, pix, media.grids):
                encode = thinker.get_image_features if kind == "image" else thinker.get_video_features
                rows.append(torch.cat(encode(p, torch.tensor([grid])).pooler_output))
                spg.append(1.0 if kind == "video" else 0.0)
            vision = VisionEmbeddings(torch.cat(rows), (), media.grids, tuple(kinds_v), tuple(spg))
            images = [(p, gr) for k, p, gr in zip(kinds_v, pix, media.grids) if k == "image"]
            videos = [(p, gr) for k, p, gr in zip(kinds_v, pix, media.grids) if k == "video"]
            if images:
                kwargs |= dict(pixel_values=torch.cat([p for p, _ in images]),
                               image_grid_thw=torch.tensor([gr for _, gr in images]))
            if videos:
                kwargs |= dict(pixel_values_videos=torch.cat([p for p, _ in videos]),
                               video_grid_thw=torch.tensor([gr for _, gr in videos]),
                               video_second_per_grid=torch.tensor([1.0] * len(videos)),
                               use_audio_in_video=True)
        table = thinker.get_input_embeddings().weight
        prompt = build_thinker_prompt(PromptTokens(torch.tensor(ids), tuple(kinds)), audio, vision, table,
                                      TmropeIds.from_hf_config(oracle.config.thinker_config.to_dict()))
    input_ids = prompt.input_ids[None]
    return prompt, dict(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **kwargs)


@pytest.mark.parametrize("name", list(PROMPTS))
def test_prompt_logits_and_hidden_states_equal_the_oracle(pair, name):
    oracle, _, ours = pair
    prompt, kwargs = oracle_inputs(oracle, PROMPTS[name])
    with torch.no_grad():
        ref = oracle.thinker(**kwargs, output_hidden_states=True)
        hidden = ours.hidden(prompt.embeds[None], prompt.positions[:, None])
        torch.testing.assert_close(prompt.embeds, ref.hidden_states[0][0], rtol=0, atol=1e-5)  # after the scatter
        torch.testing.assert_close(hidden, ref.hidden_states[-1], rtol=0, atol=1e-4)
        torch.testing.assert_close(ours.head(hidden), ref.logits, rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", ["text", "audio_image", "audio_in_video"])
def test_node_greedy_tokens_and_talker_states_equal_generate(pair, name):
    """Tokens of `thinker.generate`; TalkerPrompt = hs[0][-1] + hs[0][0] zeroed at media pads; the state of
    generated token j = hs[j+1][-1] + hs[j+1][0] (reference section 6.2)."""
    oracle, ckpt, _ = pair
    prompt, kwargs = oracle_inputs(oracle, PROMPTS[name])
    with torch.no_grad():
        ref = oracle.thinker.generate(**kwargs, max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=[],
                                      output_hidden_states=True, return_dict_in_generate=True)
    want = ref.sequences[0, prompt.input_ids.shape[0]:].tolist()
    out = run_node(Qwen25Thinker, {"thinker_prompt": prompt},
                   {"greedy": True, "max_new_tokens": NEW_TOKENS}, checkpoint=ckpt)
    assert out["token_ids"].ids == tuple(want) == tuple(t.id for t in out["tokens"])

    hs = ref.hidden_states
    media = torch.isin(prompt.input_ids, torch.tensor([AUDIO, IMAGE, VIDEO]))
    talker = out["talker_prompt"]
    torch.testing.assert_close(talker.states, hs[0][-1][0] + hs[0][0][0].masked_fill(media[:, None], 0),
                               rtol=0, atol=1e-4)
    assert torch.equal(talker.input_ids, prompt.input_ids) and torch.equal(talker.positions, prompt.positions)
    assert talker.rope_delta == prompt.rope_delta
    states = out["states"]
    assert [s.token_id for s in states] == want[:-1]  # the last token is never fed back
    for j, s in enumerate(states):
        torch.testing.assert_close(s.state, hs[j + 1][-1][0, 0] + hs[j + 1][0][0, 0], rtol=0, atol=1e-4)


def with_config(ckpt, folder, edit) -> Checkpoint:
    """`ckpt`'s weights (linked) under a config.json changed by edit(config)."""
    import json

    folder.mkdir()
    for f in ckpt.path.iterdir():
        if f.name != "config.json":
            (folder / f.name).symlink_to(f)
    config = json.loads((ckpt.path / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    return Checkpoint.open(folder)


def test_stops_after_the_checkpoint_eos(pair, tmp_path):
    oracle, ckpt, _ = pair
    prompt, _ = oracle_inputs(oracle, PROMPTS["text"])
    run = lambda c: run_node(Qwen25Thinker, {"thinker_prompt": prompt},  # noqa: E731
                             {"greedy": True, "max_new_tokens": 3}, checkpoint=c)["token_ids"].ids
    first = run(ckpt)
    assert len(first) == 3
    eos = with_config(ckpt, tmp_path / "eos", lambda c: c["thinker_config"].update(eos_token_id=first[0]))
    assert run(eos) == first[:1]


class HeldPrefill(Qwen25BatchModel):
    """The first prefill waits until `release` is set, so requests queued meanwhile are served together."""

    def __init__(self, model):
        super().__init__(model)
        self.release, self.held = threading.Event(), False

    def prefill(self, cache, rows, request, start, count):
        if not self.held:
            self.held = True
            assert self.release.wait(WAIT), "the held prefill was never released"
        return super().prefill(cache, rows, request, start, count)


def served(model, prompts, batched: bool):
    """Greedy tokens, prompt hidden states and decode states of each prompt, together or one by one."""
    batch_model = HeldPrefill(model) if batched else Qwen25BatchModel(model)
    engine = BatchingEngine(batch_model, max_batch=4, prefill_chunk=7)  # 7: prompts span several chunks
    requests = [GenerationRequest(prompt_len=p.embeds.shape[0], max_new_tokens=NEW_TOKENS + 3 * i,
                                  params=SamplingParams(greedy=True), generator=None, stop_ids=frozenset(),
                                  cancelled=threading.Event(), prompt_ids=p.input_ids,
                                  state=Qwen25Inputs(p.embeds[None], p.positions[:, None], int(p.rope_delta)))
                for i, p in enumerate(prompts)]
    if batched:
        streams = [engine.submit(r) for r in requests]
        batch_model.release.set()
        tokens = [list(s) for s in streams]
        assert engine.peak_batch == len(prompts)
    else:
        tokens = [list(engine.submit(r)) for r in requests]
        assert engine.peak_batch == 1
    return tokens, [(torch.cat(r.state.prompt_hidden), torch.stack(r.state.states)) for r in requests]


def test_batched_runs_equal_runs_alone(pair):
    oracle, _, ours = pair
    prompts = [oracle_inputs(oracle, PROMPTS[name])[0] for name in ("audio_in_video", "text", "audio_image")]
    alone_tokens, alone_states = served(ours, prompts, batched=False)
    tokens, states = served(ours, prompts, batched=True)
    assert tokens == alone_tokens
    for (h, s), (h_alone, s_alone) in zip(states, alone_states):
        torch.testing.assert_close(h, h_alone, rtol=0, atol=1e-5)
        torch.testing.assert_close(s, s_alone, rtol=0, atol=1e-5)


def node_run(node: Qwen25Thinker, prompt, seed: int) -> dict:
    enter_run(RunContext(run_id=f"run{seed}", node=node.name, seed=seed))
    out: dict = {}
    for port, item in node.stream(prompt):
        out.setdefault(port, []).append(item)
    return out


def test_concurrent_sampled_node_runs_keep_their_outputs(pair):
    """Each run its own seed: tokens, Talker prompt and states as alone, whether or not the runs batched."""
    oracle, ckpt, _ = pair
    node = Qwen25Thinker(Qwen25Thinker.Config(max_new_tokens=8, temperature=1.5, top_k=0, top_p=1.0))
    node.load("cpu", ckpt)
    prompts = [oracle_inputs(oracle, PROMPTS[name])[0] for name in ("audio_image", "text", "two_images")]
    want = [node_run(node, p, seed) for seed, p in enumerate(prompts)]
    with ThreadPoolExecutor(len(prompts)) as pool:
        got = list(pool.map(lambda a: node_run(node, *a), [(p, seed) for seed, p in enumerate(prompts)]))
    for g, w in zip(got, want):
        assert g["token_ids"] == w["token_ids"] and g["tokens"] == w["tokens"]
        torch.testing.assert_close(g["talker_prompt"][0].states, w["talker_prompt"][0].states, rtol=0, atol=1e-5)
        assert [s.token_id for s in g["states"]] == [s.token_id for s in w["states"]]
        for a, b in zip(g["states"], w["states"]):
            torch.testing.assert_close(a.state, b.state, rtol=0, atol=1e-5)


def test_key_table_lists_the_released_names(pair):
    oracle, ckpt, _ = pair
    entries = {key: shape for key, shape, _ in key_table(ckpt.config).entries()}
    saved = {k: tuple(v.shape) for k, v in oracle.state_dict().items()}
    on_disk = {k.replace("thinker.model.language_model.", "thinker.model."): v for k, v in saved.items()
               if k.startswith(("thinker.model.language_model.", "thinker.lm_head."))}
    assert entries == on_disk


def test_a_mis_shaped_tensor_names_the_key(pair, tmp_path):
    _, ckpt, _ = pair
    wider = with_config(ckpt, tmp_path / "wider",
                        lambda c: c["thinker_config"]["text_config"].update(intermediate_size=136))
    with pytest.raises(CheckpointError, match=r"thinker\.model\.layers\.0\.mlp\.gate_proj\.weight"):
        load_thinker(wider)


def test_a_tied_thinker_reads_its_head_from_the_embeddings(tmp_path):
    """Only the thinker-level tie_word_embeddings ties the head (reference section 5.1)."""
    oracle = build_model({"thinker_config": dict(tie_word_embeddings=True)})
    ckpt = Checkpoint.open(save_checkpoint(oracle, tmp_path / "tied"))
    ours = load_thinker(ckpt)
    prompt, kwargs = oracle_inputs(oracle, PROMPTS["text"])
    with torch.no_grad():
        logits = ours.head(ours.hidden(prompt.embeds[None], prompt.positions[:, None]))
        torch.testing.assert_close(logits, oracle.thinker(**kwargs).logits, rtol=0, atol=1e-4)


@pytest.mark.parametrize("node_cls", [Qwen25Thinker, Qwen25Interleaver])
def test_a_checkpoint_of_another_family_is_a_user_error(pair, tmp_path, node_cls):
    _, ckpt, _ = pair
    other = with_config(ckpt, tmp_path / "qwen3", lambda c: c.update(model_type="qwen3_omni_moe"))
    with pytest.raises(UserError, match="model_type is 'qwen3_omni_moe', and kind '.*' reads 'qwen2_5_omni' checkp"):
        node_cls().check_checkpoint(other)


@torch.inference_mode()
def test_whole_prompts_in_one_padded_call_equal_each_alone(pair):
    oracle, _, ours = pair
    prompts = [oracle_inputs(oracle, PROMPTS[name])[0] for name in ("text", "audio_image", "audio_in_video")]
    model = Qwen25BatchModel(ours)

    def requests():
        return [GenerationRequest(prompt_len=p.embeds.shape[0], max_new_tokens=2, params=SamplingParams(greedy=True),
                                  generator=None, stop_ids=frozenset(), cancelled=threading.Event(),
                                  state=Qwen25Inputs(p.embeds[None], p.positions[:, None], int(p.rope_delta)))
                for p in prompts]

    def prefill_and_decode(cache, slots, rs, last):  # -> (last prompt hidden, one decode step's hidden) per request
        tokens = model.head(last).argmax(-1)
        return list(zip(last, model.decode(cache, cache.rows(slots, 1), tokens, rs)))

    want, alone = [], requests()
    for r in alone:
        cache = model.new_cache()
        slot = cache.add(r.prompt_len + 1)
        want += prefill_and_decode(cache, [slot], [r], model.prefill(cache, cache.rows([slot], r.prompt_len), r, 0,
                                                                     r.prompt_len))
    rs, cache = requests(), model.new_cache()
    slots = [cache.add(r.prompt_len + 1) for r in rs]
    got = prefill_and_decode(cache, slots, rs, model.prefill_many(cache, cache.rows(slots, [r.prompt_len for r in rs]),
                                                                  rs))
    for (last, step), (last_alone, step_alone) in zip(got, want):
        torch.testing.assert_close(last, last_alone, rtol=0, atol=1e-5)
        torch.testing.assert_close(step, step_alone, rtol=0, atol=1e-5)
    for r, r_alone in zip(rs, alone):
        torch.testing.assert_close(r.state.prompt_hidden[0], r_alone.state.prompt_hidden[0], rtol=0, atol=1e-5)
        torch.testing.assert_close(r.state.states[0], r_alone.state.states[0], rtol=0, atol=1e-5)
