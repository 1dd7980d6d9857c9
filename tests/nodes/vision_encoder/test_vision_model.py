"""Vision tower parity with transformers' Qwen3-Omni visual model on tiny random checkpoints (float32, eager).

Each config is saved as a real HF checkpoint and loaded through our weights.py; merged output and every
deepstack level are compared for an image, a video and a mixed batch in one call.
"""
from __future__ import annotations

import pytest
import torch
from oracle import build_model, save_checkpoint

from omnigraph.nodes.vision_encoder.model import VisionArgs
from omnigraph.nodes.vision_encoder.weights import load_vision_encoder
from omnigraph.runtime.checkpoint import Checkpoint, CheckpointError
from omnigraph.runtime.errors import UserError

CONFIGS = {
    "tiny": {},
    # head_dim 8, 6 heads, 6x6 position grid (interpolated up and down), deepstack after blocks 1 and 3
    "h48": {"thinker_config.vision_config": dict(hidden_size=48, num_heads=6, depth=4, intermediate_size=80,
                                                 deepstack_visual_indexes=[1, 3], num_position_embeddings=36)},
    # out_hidden_size 96 (the thinker width must follow), head_dim 12, three deepstack levels
    "out96": {"thinker_config.vision_config": dict(hidden_size=36, num_heads=3, depth=3, intermediate_size=50,
                                                   out_hidden_size=96, deepstack_visual_indexes=[0, 1, 2],
                                                   num_position_embeddings=49),
              "thinker_config.text_config": dict(hidden_size=96),
              "thinker_config.audio_config": dict(output_dim=96),
              "talker_config": dict(thinker_hidden_size=96)},
}
CASES = {
    "image": [(1, 4, 6)],
    "video": [(3, 6, 4)],
    "mixed": [(1, 2, 2), (2, 8, 10), (1, 4, 6), (3, 2, 4)],
}


def oracle_visual(model):
    thinker = model.thinker
    return thinker.model.visual if hasattr(thinker.model, "visual") else thinker.visual


@pytest.fixture(scope="module", params=list(CONFIGS))
def pair(request, tmp_path_factory):
    model = build_model(CONFIGS[request.param], seed=len(request.param))
    path = save_checkpoint(model, tmp_path_factory.mktemp(f"vision-{request.param}"))
    ours = load_vision_encoder(Checkpoint.open(path))
    return request.param, oracle_visual(model), ours, path


@pytest.mark.parametrize("case", list(CASES))
def test_encoder_matches_oracle(pair, case):
    name, oracle, ours, _ = pair
    grids = CASES[case]
    n = sum(t * h * w for t, h, w in grids)
    pixels = torch.randn(n, ours.args.patch_dim, generator=torch.Generator().manual_seed(n))
    with torch.no_grad():
        ref = oracle(pixels, torch.tensor(grids))
        merged, deepstack = ours(pixels, grids)
    assert merged.shape == (n // 4, ours.args.out_hidden_size)
    torch.testing.assert_close(merged, ref.pooler_output, atol=1e-5, rtol=1e-5)
    assert len(deepstack) == len(ref.deepstack_features) == len(ours.args.deepstack_visual_indexes)
    for level, (a, b) in enumerate(zip(deepstack, ref.deepstack_features)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=lambda m: f"{name}/{case} deepstack {level}: {m}")


def test_items_do_not_attend_across_segments(pair):
    """A mixed batch equals each item encoded alone: attention stays inside each (item, t) slice."""
    _, _, ours, _ = pair
    grids = CASES["mixed"]
    n = sum(t * h * w for t, h, w in grids)
    pixels = torch.randn(n, ours.args.patch_dim, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        merged, _ = ours(pixels, grids)
        alone, start = [], 0
        for t, h, w in grids:
            alone.append(ours(pixels[start:start + t * h * w], [(t, h, w)])[0])
            start += t * h * w
    torch.testing.assert_close(merged, torch.cat(alone), atol=1e-5, rtol=1e-5)


def test_bfloat16_load_runs(pair):
    _, _, ours, path = pair
    bf16 = load_vision_encoder(Checkpoint.open(path), dtype=torch.bfloat16)
    pixels = torch.randn(24, ours.args.patch_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        merged, deepstack = bf16(pixels, [(1, 4, 6)])
        ref, _ = ours(pixels, [(1, 4, 6)])
    assert merged.dtype == torch.bfloat16 and all(d.dtype == torch.bfloat16 for d in deepstack)
    torch.testing.assert_close(merged.float(), ref, atol=0.1, rtol=0.1)  # bf16 rounding, not a parity check


def test_args_from_released_config_values():
    released = {"thinker_config": {"vision_config": {
        "depth": 27, "hidden_size": 1152, "num_heads": 16, "intermediate_size": 4304, "out_hidden_size": 2048,
        "num_position_embeddings": 2304, "deepstack_visual_indexes": [8, 16, 24], "patch_size": 16,
        "image_size": 768, "apply_vit_abs_pos_embed": True, "tokens_per_second": 2}}}
    args = VisionArgs.from_hf_config(released)
    assert (args.head_dim, args.grid_side, args.patch_dim, args.merged_dim) == (72, 48, 1536, 4608)
    assert args.deepstack_visual_indexes == (8, 16, 24) and args.rope_theta == 10000.0
    with pytest.raises(UserError, match="perfect square"):
        VisionArgs.from_hf_config({"num_position_embeddings": 50})
    with pytest.raises(UserError, match="deepstack_visual_indexes"):
        VisionArgs.from_hf_config({"depth": 2, "deepstack_visual_indexes": [2]})


def test_bad_grids_are_user_errors(pair):
    _, _, ours, _ = pair
    with pytest.raises(UserError, match="cover 24 patches but 20"):
        ours(torch.zeros(20, ours.args.patch_dim), [(1, 4, 6)])
    with pytest.raises(UserError, match="multiples of 2"):
        ours(torch.zeros(15, ours.args.patch_dim), [(1, 3, 5)])


def test_mismatched_checkpoint_names_key_and_shapes(tmp_path):
    import json
    import shutil

    model = build_model({"thinker_config.vision_config": dict(depth=2, deepstack_visual_indexes=[1])})
    path = save_checkpoint(model, tmp_path / "ckpt")
    config = json.loads((path / "config.json").read_text())
    config["thinker_config"]["vision_config"]["intermediate_size"] = 72
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"thinker\.visual\.blocks\.0\.mlp\.linear_fc1\.weight.*\[64, 32\].*"
                                              r"\[72, 32\]"):
        load_vision_encoder(Checkpoint.open(path))
    shutil.rmtree(path)
