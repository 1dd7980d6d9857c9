"""qwen2_5_vision_encoder against transformers' Qwen2.5-Omni vision tower (BASE and VARIANT of tests/oracle25.py,
loaded from saved checkpoints through our loader), its preprocessing against Qwen2VLImageProcessorPil with patch
14, and prompts of concurrent runs encoded in one batched call, each equal to the prompt alone."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from held_batch import queued_together
from oracle25 import VARIANT, build_model, save_checkpoint

from omnigraph.nodes.qwen2_5_vision_encoder.node import VIDEO_MIN_PIXELS, Qwen25VisionEncoderNode
from omnigraph.nodes.vision_encoder.preprocess import PreprocessArgs, preprocess_image, preprocess_video, smart_resize
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.errors import UserError
from omnigraph.runtime.media_payloads import Image, MediaItem, PromptTokens, Video, VisionEmbeddings

TOL = dict(atol=1e-4, rtol=1e-4)  # the bound; max abs diff seen 3.8e-6 (outputs of scale ~3)
CONFIGS = {"base": {}, "variant": VARIANT}  # variant: windows of 2x2 merge blocks, one full-attention block
SMALL_VIDEOS = dict(video_min_pixels=28 * 28 * 4, video_max_pixels=28 * 28 * 24)  # the oracle stays fast


def randomize_(module: torch.nn.Module, seed: int) -> None:
    """O(1)-scale random values everywhere (the default init's zero biases and unit norms hide mix-ups)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "norm" in name or "ln_q" in name:
                p.copy_(1.0 + 0.2 * noise)
            elif p.ndim == 1:
                p.copy_(0.2 * noise)
            else:
                p.copy_(noise / p[0].numel() ** 0.5)


def load_node(path, **config) -> Qwen25VisionEncoderNode:
    node = Qwen25VisionEncoderNode(Qwen25VisionEncoderNode.Config(**config))
    node.load("cpu", Checkpoint.open(path))
    return node


@pytest.fixture(scope="module", params=list(CONFIGS))
def encoder(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(f"qwen25_vision_{request.param}")
    model = build_model(CONFIGS[request.param])
    randomize_(model.thinker.model.visual, seed=4)
    save_checkpoint(model, path)
    return path, load_node(path, **SMALL_VIDEOS), model.thinker


def oracle(thinker, pixels: torch.Tensor, grids) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat(thinker.get_image_features(pixels, torch.tensor(grids)).pooler_output)


def random_image(height: int, width: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (height, width, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def random_video(frames: int, height: int, width: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (frames, height, width, 3), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def prompt(media, images=(), videos=()) -> PromptTokens:
    return PromptTokens(torch.tensor([151644, 872, 198]), tuple(media), (), tuple(images), tuple(videos))


def image_processor(args: PreprocessArgs):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(patch_size=args.patch_size, temporal_patch_size=args.temporal_patch_size,
                                    merge_size=args.merge_size, min_pixels=args.min_pixels,
                                    max_pixels=args.max_pixels, image_mean=list(args.image_mean),
                                    image_std=list(args.image_std))


def node_pixels(node, p: PromptTokens) -> torch.Tensor:
    """The node's patch rows for a prompt whose media list names its images before its videos."""
    rows = [preprocess_image(i.pixels, node._prep)[0] for i in p.images]
    return torch.cat(rows + [preprocess_video(v.frames, node._prep)[0] for v in p.videos])


def test_images_and_videos_match_oracle(encoder):
    _, node, thinker = encoder
    images = [random_image(300, 200, 1), random_image(65, 97, 2), random_image(56, 56, 3), random_image(40, 500, 4)]
    videos = [Video(random_video(2, 64, 90, 5), fps=2.0), Video(random_video(3, 50, 60, 6), fps=1.0)]
    media = [MediaItem("image", i) for i in range(4)] + [MediaItem("video", 0), MediaItem("video", 1)]
    out = node.process(prompt(media, [Image(i) for i in images], videos))["vision"]
    assert isinstance(out, VisionEmbeddings) and out.deepstack == ()
    assert out.kinds == ("image",) * 4 + ("video",) * 2 and out.seconds_per_grid == (0.0,) * 4 + (1.0, 2.0)
    assert [g[0] for g in out.grids] == [1, 1, 1, 1, 1, 2]  # 3 frames: the last repeated, 2 temporal steps
    hf = image_processor(node._prep)
    ref = [hf(images=[i.numpy()], return_tensors="pt", input_data_format="channels_last") for i in images]
    assert [list(g) for g in out.grids[:4]] == [r["image_grid_thw"][0].tolist() for r in ref]
    assert out.grids[0] == (1, 22, 14)  # non-square, several windows with partial ones at the edges
    pixels = torch.cat([r["pixel_values"] for r in ref] + [preprocess_video(v.frames, node._prep)[0] for v in videos])
    want = oracle(thinker, pixels, out.grids)
    assert out.embeddings.shape == (sum(t * h * w for t, h, w in out.grids) // 4, want.shape[1]) == want.shape
    torch.testing.assert_close(out.embeddings, want, **TOL)


@pytest.mark.parametrize("height,width", [(65, 97), (300, 200), (1, 1), (40, 900), (28, 28)])
def test_image_preprocessing_matches_qwen2vl_image_processor_with_patch_14(encoder, height, width):
    _, node, _ = encoder
    assert (node._prep.patch_size, node._prep.factor) == (14, 28)
    image = random_image(height, width, seed=height + width)
    ref = image_processor(node._prep)(images=[image.numpy()], return_tensors="pt", input_data_format="channels_last")
    patches, grid = preprocess_image(image, node._prep)
    assert [list(grid)] == ref["image_grid_thw"].tolist()
    torch.testing.assert_close(patches, ref["pixel_values"], atol=1e-5, rtol=1e-5)


def test_video_preprocessing_follows_the_processor_layout(encoder):
    """Section 3.2: frames in pairs (an odd count padded with the last frame), rows (C, T, 14, 14) in merge-block
    order; frames that need no resize give the image rows (one frame fills both temporal slots)."""
    _, node, _ = encoder
    frame = random_image(56, 84, seed=7)
    rows, grid = preprocess_video(frame[None].expand(3, -1, -1, -1).contiguous(), node._prep)
    image_rows, image_grid = preprocess_image(frame, node._prep)
    assert grid == (2, 4, 6) and image_grid == (1, 4, 6)
    torch.testing.assert_close(rows, torch.cat([image_rows, image_rows]), atol=1e-6, rtol=0)


def test_default_video_limits_are_the_qwen2_5_processors(encoder):
    path, _, _ = encoder
    node = load_node(path)
    _, grid = preprocess_video(random_video(2, 64, 90, 8), node._prep)
    h, w = smart_resize(64, 90, 28, VIDEO_MIN_PIXELS, 768 * 28 * 28)
    assert grid == (1, h // 14, w // 14) and h * w >= VIDEO_MIN_PIXELS


def batching_prompts() -> list[PromptTokens]:
    image, video = MediaItem("image", 0), MediaItem("video", 0)
    return [
        prompt([image], [Image(random_image(65, 97, 11))]),
        prompt([image, video], [Image(random_image(40, 300, 12))], [Video(random_video(3, 48, 80, 13), fps=2.0)]),
        prompt([video], videos=[Video(random_video(2, 32, 64, 14), fps=1.0)]),
        prompt([image, MediaItem("image", 1)], [Image(random_image(200, 150, 15)), Image(random_image(32, 32, 16))]),
    ]


def test_concurrent_prompts_batched_equal_each_alone(encoder):
    path, _, thinker = encoder
    node = load_node(path, max_batch=2, **SMALL_VIDEOS)
    ps = batching_prompts()
    bad = prompt([MediaItem("video", 0)], videos=[Video(random_video(2, 32, 32, 17), fps=0.0)])
    got, gate = queued_together(node._batcher, [lambda p=p: node.process(p)["vision"]
                                                for p in [ps[0], bad, *ps[1:]]])
    assert gate.sizes == [1, 2, 1] and node._batcher.peak_batch == 2
    assert isinstance(got[1], UserError) and "video 0 of the prompt has fps 0.0" in str(got[1])
    for p, out in zip(ps, [got[0], *got[2:]]):
        pixels = node_pixels(node, p)
        with torch.no_grad():  # alone: other matmul shapes, so equal up to rounding
            torch.testing.assert_close(out.embeddings, node._model(pixels, out.grids), atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(out.embeddings, oracle(thinker, pixels, out.grids), **TOL)


def test_bad_prompts_name_the_item_and_the_fix(encoder):
    _, node, _ = encoder
    image = Image(random_image(32, 32, 0))
    assert node.process(prompt([])) == {}
    with pytest.raises(UserError, match=r"holds 2 image\(s\) but its media list names image indexes \[0\]"):
        node.process(prompt([MediaItem("image", 0)], [image, image]))
    gray = Image(torch.zeros(32, 32, dtype=torch.uint8), source="gray.png")
    with pytest.raises(UserError, match=r"image 0 of the prompt \(from 'gray.png'\) must be RGB pixels of shape "
                                        r"\[H, W, 3\], got shape \[32, 32\]"):
        node.process(prompt([MediaItem("image", 0)], [gray]))


def test_unsupported_config_names_config_json(encoder, tmp_path):
    path, _, _ = encoder
    bad = tmp_path / "bad"
    shutil.copytree(path, bad)
    config = json.loads((bad / "config.json").read_text())
    config["thinker_config"]["vision_config"]["fullatt_block_indexes"] = [9]
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"config.json: thinker_config.vision_config: fullatt_block_indexes \[9\] "
                                        r"must be < depth \d"):
        load_node(bad)


def test_checkpoint_check_uses_the_key_table_and_names_mis_shaped_tensors(encoder, tmp_path):
    from omnigraph.nodes.qwen2_5_vision_encoder.weights import key_table
    from omnigraph.runtime.checkpoint_check import CheckpointProbe

    path, _, _ = encoder
    probe = CheckpointProbe.open(path)
    Qwen25VisionEncoderNode().check_checkpoint(probe)
    assert probe.problems == [] and len(probe.fitting) == len(key_table(probe.config).keys)
    bad = tmp_path / "bad"
    shutil.copytree(path, bad)
    config = json.loads((bad / "config.json").read_text())
    config["thinker_config"]["vision_config"]["intermediate_size"] += 8
    (bad / "config.json").write_text(json.dumps(config))
    probe = CheckpointProbe.open(bad)
    Qwen25VisionEncoderNode().check_checkpoint(probe)
    assert any("'thinker.visual.blocks.0.mlp.gate_proj.weight' in model.safetensors has shape" in p
               for p in probe.problems), probe.problems


def test_bfloat16_and_no_checkpoint(encoder):
    from omnigraph.testing import run_node

    path, node, _ = encoder
    p = batching_prompts()[1]
    want = node.process(p)["vision"].embeddings
    got = load_node(path, dtype="bfloat16", **SMALL_VIDEOS).process(p)["vision"].embeddings
    assert got.dtype == torch.bfloat16
    assert (got.float() - want).abs().max() / want.abs().max() < 0.05
    with pytest.raises(UserError, match="needs a checkpoint"):
        run_node("qwen2_5_vision_encoder", {"prompt": p})


def test_preprocessor_config_and_node_config_set_the_resize(encoder, tmp_path):
    path, _, thinker = encoder
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    for f in path.iterdir():
        (ckpt / f.name).symlink_to(f)
    (ckpt / "preprocessor_config.json").write_text(json.dumps(
        {"min_pixels": 28 * 28 * 40, "max_pixels": 28 * 28 * 60, "image_mean": [0.5] * 3, "image_std": [0.5] * 3,
         "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2}))
    image = random_image(300, 200, seed=9)
    p = prompt([MediaItem("image", 0)], [Image(image)])
    out = load_node(ckpt).process(p)["vision"]
    args = PreprocessArgs(patch_size=14, min_pixels=28 * 28 * 40, max_pixels=28 * 28 * 60, image_mean=(0.5,) * 3,
                          image_std=(0.5,) * 3)
    ref = image_processor(args)(images=[image.numpy()], return_tensors="pt", input_data_format="channels_last")
    assert [list(out.grids[0])] == ref["image_grid_thw"].tolist() == [[1, 18, 12]]
    torch.testing.assert_close(out.embeddings, oracle(thinker, ref["pixel_values"], out.grids), **TOL)
    assert load_node(ckpt, max_pixels=28 * 28 * 6).process(p)["vision"].grids == ((1, 6, 4),)  # node config wins
