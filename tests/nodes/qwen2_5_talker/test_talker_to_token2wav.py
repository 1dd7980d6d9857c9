"""qwen2_5_talker -> token2wav as a graph against transformers' whole `generate` (greedy Thinker and Talker, the
documented mask workaround, the same noise): identical codec ids and the waveform within 1e-4."""
import torch
from talker25_oracle import CHAT, GRID, perturbed_model, save_checkpoint, thinker_run, with_mask_kept

from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.testing import graph_from_yaml, run_graph

SPEECH = """
nodes:
  talker: {kind: qwen2_5_talker, config: {greedy: true, max_new_tokens: 20}}
  token2wav: {kind: token2wav, config: {seed: 7, num_steps: 4}}
edges:
  - talker.codes -> token2wav.codes
inputs: {talker_prompt: talker.talker_prompt, states: talker.states}
outputs: {audio: token2wav.audio, codec_codes: token2wav.codec_codes, talker_codes: talker.codec_codes}
"""


def test_speech_equals_generate(tmp_path):
    model = perturbed_model(seed=9)
    ckpt = Checkpoint.open(save_checkpoint(model, tmp_path / "ckpt"))
    run = thinker_run(model, n_tokens=6)
    pixels = torch.randn(16, 3 * 2 * 14 * 14, generator=torch.Generator().manual_seed(3))  # thinker_run's image
    ids = torch.tensor([CHAT])
    with_mask_kept(model.talker)
    torch.manual_seed(7)
    with torch.no_grad():
        _, expected = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), thinker_pixel_values=pixels,
                                     image_grid_thw=GRID, speaker="Chelsie", thinker_do_sample=False,
                                     thinker_max_new_tokens=6, thinker_min_new_tokens=6, talker_do_sample=False,
                                     talker_max_new_tokens=20, token2wav_num_steps=4)
    out = run_graph(graph_from_yaml(SPEECH), {"talker_prompt": run.prompt, "states": run.states},
                    checkpoint=ckpt).outputs
    codes = out["codec_codes"].ids
    assert codes == out["talker_codes"].ids and len(codes) >= 1
    wav = torch.cat([c.samples for c in out["audio"]])
    assert wav.shape == expected.shape == (480 * len(codes),)
    torch.testing.assert_close(wav, expected, atol=1e-4, rtol=0)
