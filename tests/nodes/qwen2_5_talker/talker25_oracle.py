"""The Qwen2.5-Omni Talker tests' oracle: a random transformers model (norms and biases perturbed, so that the
loader's bias and norm handling is checked), the oracle Thinker's outputs turned into our TalkerPrompt and
ThinkerStates, and the transformers Talker inputs built from the same outputs (reference section 6.2)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from oracle25 import build_model, save_checkpoint

from omnigraph.nodes.qwen2_5.payloads import TalkerPrompt, ThinkerState

IM_START, IM_END, NL, USER, ASSISTANT = 151644, 151645, 198, 872, 77091
VBOS, VEOS, IMAGE = 151652, 151653, 151655
WORDS = [74785, 279, 9104, 304, 12095, 3351, 11, 26753, 13]
GRID = torch.tensor([[1, 4, 4]])  # one image: 16 patches, 4 merged tokens
CHAT = [IM_START, USER, NL, VBOS, *[IMAGE] * 4, VEOS, *WORDS, IM_END, NL, IM_START, ASSISTANT, NL]
CODEC_MASK, CODEC_PAD, CODEC_BOS, CODEC_EOS, TEXT_EOS, TEXT_PAD = 8296, 8292, 8293, 8294, 151861, 151859


def perturbed_model(overrides=None, seed: int = 0):
    """build_model with every norm weight, bias and SnakeBeta parameter drawn at random (not 1 or 0)."""
    model = build_model(overrides, seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if "norm" in name or leaf in ("bias", "alpha", "beta"):
                p.copy_(torch.rand(p.shape, generator=g) + (0.5 if "norm" in name and leaf == "weight" else -0.5))
    return model


@dataclass
class ThinkerRun:
    prompt: TalkerPrompt
    states: list[ThinkerState]  # reply_0 .. reply_{n-2}
    generated: list[int]  # g_0 .. g_{n-1}
    hf: dict  # the transformers Talker's generate inputs (section 6.2)


def thinker_run(model, n_tokens: int = 8, seed: int = 3) -> ThinkerRun:
    """The oracle Thinker, greedy, on CHAT with a random image, for n_tokens; its states as our payloads."""
    ids = torch.tensor([CHAT])
    mask = torch.ones_like(ids)
    pixels = torch.randn(16, 3 * 2 * 14 * 14, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        out = model.thinker.generate(input_ids=ids, attention_mask=mask, pixel_values=pixels, image_grid_thw=GRID,
                                     do_sample=False, max_new_tokens=n_tokens, min_new_tokens=n_tokens,
                                     output_hidden_states=True, return_dict_in_generate=True)
        positions, delta = model.thinker.get_rope_index(ids, GRID, None, mask)
    hs = out.hidden_states
    embeds0 = hs[0][0].clone()
    embeds0[ids == IMAGE] = 0
    prompt_states = hs[0][-1] + embeds0  # [1, P, D]
    replies = [hs[k][-1] + hs[k][0] for k in range(1, len(hs))]  # reply_j = H_{j+1} + E_{j+1}: [1, 1, D]
    generated = out.sequences[0, ids.shape[1]:].tolist()
    prompt = TalkerPrompt(prompt_states[0], ids[0], positions[:, 0], int(delta[0, 0]))
    states = [ThinkerState(generated[j], replies[j][0, 0]) for j in range(len(replies))]
    embed = model.thinker.get_input_embeddings()
    hf = talker_inputs(model, ids, mask, prompt_states, replies, generated, embed)
    return ThinkerRun(prompt, states, generated, hf)


def talker_inputs(model, ids, mask, prompt_states, replies, generated, embed) -> dict:
    bos = model.speaker_map["Chelsie"]["bos_token"]
    P = ids.shape[1]
    with torch.no_grad():
        inputs_embeds = torch.cat([prompt_states, embed(torch.tensor([[bos]])), replies[0]], dim=1)
        trailing = torch.cat([*replies[1:], embed(torch.tensor([[TEXT_EOS]])), embed(torch.tensor([[TEXT_PAD]]))],
                             dim=1)
    return dict(input_ids=torch.tensor([[CODEC_MASK] * P + [CODEC_PAD, CODEC_BOS]]),
                input_text_ids=torch.cat([ids, torch.tensor([[bos, generated[0]]])], dim=1),
                thinker_reply_part=trailing, inputs_embeds=inputs_embeds,
                attention_mask=torch.cat([mask, torch.ones(1, 2, dtype=mask.dtype)], dim=1), image_grid_thw=GRID)


def with_mask_kept(talker):
    """The documented workaround (section 6.6): generate drops an all-ones mask, so the Talker would skip its
    intended path; put it back in prepare_inputs_for_generation (the wrapper keeps a literal **kwargs, which
    generate inspects)."""
    original = talker.prepare_inputs_for_generation

    def prepare(input_ids, inputs_embeds=None, **kwargs):
        out = original(input_ids, inputs_embeds=inputs_embeds, **kwargs)
        if out.get("attention_mask") is None:
            cache = out.get("past_key_values")
            past = 0 if cache is None else cache.get_seq_length()
            B = input_ids.shape[0]
            cur = (out["inputs_embeds"] if out.get("inputs_embeds") is not None else out["input_ids"]).shape[1]
            out["attention_mask"] = torch.ones(B, past + cur, dtype=torch.long, device=input_ids.device)
        return out

    talker.prepare_inputs_for_generation = prepare
    return original


def talker_generate(model, hf: dict, max_new_tokens: int, keep_mask: bool = True):
    """transformers' greedy Talker generation as Qwen2_5OmniForConditionalGeneration.generate calls it
    (repetition penalty 1.05, eos {8292, 8294}, 8293 suppressed) -> (generated ids, per-step logits)."""
    talker = model.talker
    original = with_mask_kept(talker) if keep_mask else None
    inputs = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in hf.items()}  # the forward mutates embeds
    try:
        with torch.no_grad():
            out = talker.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, repetition_penalty=1.05,
                                  eos_token_id=[CODEC_PAD, CODEC_EOS], pad_token_id=CODEC_PAD,
                                  suppress_tokens=[CODEC_BOS], return_dict_in_generate=True, output_logits=True)
    finally:
        if original is not None:
            talker.prepare_inputs_for_generation = original
    return out.sequences[0, inputs["input_ids"].shape[1]:].tolist(), [l[0] for l in out.logits]


def codes_until_eos(ids: list[int]) -> list[int]:
    cut = next((i for i, c in enumerate(ids) if c in (CODEC_PAD, CODEC_EOS)), len(ids))
    return ids[:cut]


__all__ = ["perturbed_model", "save_checkpoint", "thinker_run", "talker_generate", "codes_until_eos"]
