"""The vision_encoder node end to end: PromptTokens in, VisionEmbeddings out, against the transformers oracle;
prompts of concurrent runs encoded in one batched call, each prompt's embeddings those it gets alone."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from checkpoint_edits import with_json_file
from held_batch import queued_together
from oracle import build_model, save_checkpoint
from test_vision_model import oracle_visual
from test_vision_preprocess import image_processor, pattern_video, random_image

from omnigraph.nodes.vision_encoder.node import VisionEncoderNode
from omnigraph.nodes.common.vision_preprocess import PreprocessArgs, preprocess_image, preprocess_video
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.errors import NodeFailed, UserError
from omnigraph.nodes.common.media_payloads import Image, MediaItem, Video
from omnigraph.nodes.qwen.payloads import PromptTokens
from omnigraph.runtime.payloads import Waveform
from omnigraph.testing import run_node


@pytest.fixture(scope="module")
def model_and_checkpoint(tmp_path_factory):
    model = build_model({"thinker_config.vision_config": dict(deepstack_visual_indexes=[0, 2])}, seed=5)
    return model, save_checkpoint(model, tmp_path_factory.mktemp("vision-node"))


def prompt(media, images=(), videos=(), audios=()):
    return PromptTokens(torch.tensor([151644, 872, 198]), tuple(media), tuple(audios), tuple(images), tuple(videos))


def oracle_embeddings(model, pixels, grids):
    with torch.no_grad():
        out = oracle_visual(model)(pixels, torch.tensor(grids))
    return out.pooler_output, out.deepstack_features


def test_items_follow_media_order_and_match_oracle(model_and_checkpoint):
    model, path = model_and_checkpoint
    images = [random_image(65, 97, seed=1), random_image(40, 300, seed=2)]
    video = pattern_video(3, 48, 80)
    media = [MediaItem("image", 0), MediaItem("audio", 0), MediaItem("video", 0), MediaItem("image", 1)]
    p = prompt(media, [Image(i) for i in images], [Video(video, fps=2.0)], [Waveform(torch.zeros(1600), 16000)])
    out = run_node("vision_encoder", {"prompt": p}, checkpoint=path)["vision"]

    args = PreprocessArgs()
    hf = image_processor(args)
    img = [hf(images=[i.numpy()], return_tensors="pt", input_data_format="channels_last") for i in images]
    vid, vid_grid = preprocess_video(video, args)  # checked against the video processor in test_vision_preprocess
    assert out.kinds == ("image", "video", "image")
    assert out.grids == (tuple(img[0]["image_grid_thw"][0].tolist()), vid_grid,
                         tuple(img[1]["image_grid_thw"][0].tolist()))
    assert out.grids == ((1, 4, 6), (2, 18, 30), (1, 2, 18))  # the video is scaled up to >= 131072 pixels/frame
    assert out.seconds_per_grid == (0.0, 1.0, 0.0)  # temporal_patch_size / fps

    pixels = torch.cat([img[0]["pixel_values"], vid, img[1]["pixel_values"]])
    merged, deepstack = oracle_embeddings(model, pixels, out.grids)
    assert out.embeddings.shape == (sum(t * h * w for t, h, w in out.grids) // 4, 64)
    torch.testing.assert_close(out.embeddings, merged, atol=1e-5, rtol=1e-5)
    assert len(out.deepstack) == 2
    for ours, ref in zip(out.deepstack, deepstack):
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_no_images_or_videos_leaves_the_output_absent(model_and_checkpoint):
    _, path = model_and_checkpoint
    p = prompt([MediaItem("audio", 0)], audios=[Waveform(torch.zeros(1600), 16000)])
    assert run_node("vision_encoder", {"prompt": p}, checkpoint=path) == {}
    assert run_node("vision_encoder", {"prompt": prompt([])}, checkpoint=path) == {}


def test_preprocessor_config_and_node_config_set_the_resize(model_and_checkpoint, tmp_path):
    model, path = model_and_checkpoint
    ckpt = with_json_file(path, tmp_path / "ckpt", "preprocessor_config.json", {
        "min_pixels": 32 * 32 * 40, "max_pixels": 32 * 32 * 60, "image_mean": [0.5] * 3, "image_std": [0.5] * 3,
        "patch_size": 16, "temporal_patch_size": 2, "merge_size": 2})
    image = random_image(300, 200, seed=9)
    p = prompt([MediaItem("image", 0)], images=[Image(image)])
    out = run_node("vision_encoder", {"prompt": p}, checkpoint=ckpt)["vision"]
    args = PreprocessArgs(min_pixels=32 * 32 * 40, max_pixels=32 * 32 * 60, image_mean=(0.5,) * 3,
                          image_std=(0.5,) * 3)
    ref = image_processor(args)(images=[image.numpy()], return_tensors="pt", input_data_format="channels_last")
    assert [list(out.grids[0])] == ref["image_grid_thw"].tolist() == [[1, 18, 12]]
    merged, _ = oracle_embeddings(model, ref["pixel_values"], out.grids)
    torch.testing.assert_close(out.embeddings, merged, atol=1e-5, rtol=1e-5)

    small = run_node("vision_encoder", {"prompt": p}, {"max_pixels": 32 * 32 * 6}, checkpoint=ckpt)["vision"]
    assert small.grids == ((1, 6, 4),)  # the node config wins over preprocessor_config.json


def test_bad_prompts_fail_with_clear_errors(model_and_checkpoint):
    _, path = model_and_checkpoint
    image = Image(random_image(32, 32, seed=0))
    with pytest.raises(NodeFailed, match=r"holds 2 image\(s\) but its media list names image indexes \[0\]"):
        run_node("vision_encoder", {"prompt": prompt([MediaItem("image", 0)], [image, image])}, checkpoint=path)
    swapped = [MediaItem("image", 1), MediaItem("image", 0)]
    with pytest.raises(NodeFailed, match=r"names image indexes \[1, 0\]; expected \[0, 1\]"):
        run_node("vision_encoder", {"prompt": prompt(swapped, [image, image])}, checkpoint=path)
    video = Video(pattern_video(2, 32, 32), fps=0.0)
    with pytest.raises(NodeFailed, match="video 0 of the prompt has fps 0.0"):
        run_node("vision_encoder", {"prompt": prompt([MediaItem("video", 0)], videos=[video])}, checkpoint=path)
    flat = Image(torch.zeros(2, 500, 3, dtype=torch.uint8))
    with pytest.raises(NodeFailed, match="image 0 of the prompt is 2x500 pixels: its aspect ratio"):
        run_node("vision_encoder", {"prompt": prompt([MediaItem("image", 0)], [flat])}, checkpoint=path)
    with pytest.raises(UserError, match="needs a checkpoint"):  # raised while loading, before the run
        run_node("vision_encoder", {"prompt": prompt([MediaItem("image", 0)], [image])})


def test_config_rejects_inverted_limits():
    from pydantic import ValidationError

    from omnigraph.nodes.vision_encoder.node import VisionEncoderNode

    with pytest.raises(ValidationError, match="min_pixels .* must not exceed max_pixels"):
        VisionEncoderNode.Config(min_pixels=10_000, max_pixels=100)
    with pytest.raises(ValidationError):
        VisionEncoderNode.Config(resize="nearest")


def test_errors_about_a_decoded_picture_name_its_file(model_and_checkpoint, tmp_path):
    from PIL import Image as PILImage

    from omnigraph.runtime.payloads import FilePath

    _, path = model_and_checkpoint
    PILImage.fromarray(np.zeros((4000, 10, 3), np.uint8)).save(tmp_path / "strip.png")
    strip = run_node("media_decode", {"path": FilePath(str(tmp_path / "strip.png"))})["image"]
    with pytest.raises(NodeFailed, match=f"image 0 of the prompt \\(from '{tmp_path / 'strip.png'}'\\) is "
                                         "4000x10 pixels: its aspect ratio 400.0 is above 200"):
        run_node("vision_encoder", {"prompt": prompt([MediaItem("image", 0)], [strip])}, checkpoint=path)


SMALL_VIDEOS = dict(video_min_pixels=32 * 32 * 2, video_max_pixels=32 * 32 * 8)  # the oracle stays fast


def batching_prompts() -> list:
    image, video = MediaItem("image", 0), MediaItem("video", 0)
    return [
        prompt([image], [Image(random_image(65, 97, seed=1))]),
        prompt([image, video], [Image(random_image(40, 300, seed=2))], [Video(pattern_video(3, 48, 80), fps=2.0)]),
        prompt([video], videos=[Video(pattern_video(5, 32, 64), fps=1.0)]),
        prompt([image, MediaItem("image", 1)], [Image(random_image(200, 150, seed=3)),
                                                Image(random_image(32, 32, seed=4))]),
        prompt([image], [Image(random_image(90, 90, seed=5))]),
    ]


def load_node(path, **config) -> VisionEncoderNode:
    node = VisionEncoderNode(VisionEncoderNode.Config(**config))
    node.load("cpu", Checkpoint.open(path))
    return node


def assert_alone(model, node, p, out) -> None:
    """out is the prompt's output alone: the oracle's on the node's preprocessing of that prompt (whose media
    list names its images before its videos)."""
    rows = [preprocess_image(i.pixels, node._prep)[0] for i in p.images]
    rows += [preprocess_video(v.frames, node._prep)[0] for v in p.videos]
    merged, deepstack = oracle_embeddings(model, torch.cat(rows), out.grids)
    torch.testing.assert_close(out.embeddings, merged, atol=1e-5, rtol=1e-5)
    assert len(out.deepstack) == len(deepstack) == 2
    for ours, ref in zip(out.deepstack, deepstack):
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cpu_patches", [2048, 100])  # 100: the batch takes several forwards
def test_batched_prompts_equal_each_prompt_alone(model_and_checkpoint, cpu_patches, monkeypatch):
    from omnigraph.nodes.vision_encoder import node as vision_node

    monkeypatch.setattr(vision_node, "CPU_PATCHES", cpu_patches)
    forwards = []
    model, path = model_and_checkpoint
    node = load_node(path, **SMALL_VIDEOS)
    ps = batching_prompts()
    encode = node._encode_together
    node._encode_together = lambda part: (forwards.append(len(part)), encode(part))[1]
    got, gate = queued_together(node._batcher, [lambda p=p: node.process(p)["vision"] for p in ps])
    assert gate.sizes == [1, len(ps) - 1] and node._batcher.peak_batch == len(ps) - 1
    # the queued prompts arrive in any order: packed in that order up to the cap, so only the counts are fixed
    assert forwards[0] == 1 and sum(forwards[1:]) == len(ps) - 1
    assert len(forwards) == 2 if cpu_patches == 2048 else len(forwards) > 2
    assert len({out.grids for out in got}) == len(ps)  # sizes and frame counts all differ
    for p, out in zip(ps, got):
        assert_alone(model, node, p, out)


def test_a_bad_prompt_fails_alone_and_max_batch_bounds_the_batches(model_and_checkpoint):
    model, path = model_and_checkpoint
    node = load_node(path, max_batch=2, **SMALL_VIDEOS)
    ps = batching_prompts()[:4]
    bad = prompt([MediaItem("video", 0)], videos=[Video(pattern_video(2, 32, 32), fps=0.0)])
    got, gate = queued_together(node._batcher, [lambda p=p: node.process(p)["vision"]
                                                for p in [ps[0], ps[1], bad, ps[2], ps[3]]])
    assert gate.sizes == [1, 2, 1] and node._batcher.peak_batch == 2
    assert isinstance(got[2], UserError) and "has fps 0.0" in str(got[2])
    for p, out in zip(ps, got[:2] + got[3:]):
        assert_alone(model, node, p, out)
