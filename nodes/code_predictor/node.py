"""code_predictor: per FrameRequest (talker hidden state + code 0), codebooks 1..G-1 of that frame.

Each frame is G one-token steps over a frame cache that every frame rewrites. Concurrent runs' frame requests
are computed together as one batched frame (server.py), each run with its own generator; a run's codes are
those it gets alone. When the Talker feeding it is loaded in the same process, the Talker's server computes
each frame with its own batch (`Talker.fuse_loop`) and this node hands the frames on (nodes/qwen3/loop_handoff.py).
Greedy, or sampled with top_k 50, top_p 0.8 and `temperature` (transformers v5 samples the code predictor
exactly when the talker samples: the graph sets `greedy` on both).
"""
from __future__ import annotations

from typing import Any, Iterator

from pydantic import Field

from ...runtime.device import DTypeSetting
from ...runtime.errors import UserError
from ...runtime.node import Node, NodeConfig
from ...runtime.ports import Input, Output
from ..qwen.payloads import CodecFrame, FrameRequest
from ..qwen3.default_checkpoint import tiny_random_checkpoint


class CodePredictor(Node):
    kind = "code_predictor"
    needs_checkpoint = True
    default_checkpoint = staticmethod(tiny_random_checkpoint)

    class Config(NodeConfig):
        greedy: bool = Field(False, description="Pick the most likely code instead of sampling (set it like the "
                             "talker's: transformers v5 mirrors the talker's do_sample).")
        temperature: float = Field(1.0, gt=0, description="Sampling temperature.")
        top_k: int = Field(50, ge=0, le=1_000_000, description="Keep the k most likely codes; 0 = all.")
        top_p: float = Field(0.8, gt=0, le=1, description="Nucleus probability mass.")
        dtype: DTypeSetting = Field("auto", description="Weights and activations dtype (auto: the checkpoint's on "
                                                        "CUDA, float32 on CPU).")
        max_batch: int = Field(16, ge=1, le=4096, description="Most concurrent runs' frames computed together (more "
                               "wait for the next batched frame).")

    inputs = (Input("requests", FrameRequest, stream=True, doc="The talker's hidden state and code 0 per frame."),)
    outputs = (Output("frames", CodecFrame, stream=True, doc="All G codes of each requested frame."),)

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..qwen3.speech_output import NO_TALKER

        from .server import CodePredictorServer
        from .weights import load_code_predictor

        checkpoint.section("talker_config", NO_TALKER)
        self._device = device
        self._model = load_code_predictor(checkpoint, self.weights or "talker.code_predictor.", "talker.",
                                          self.dtype, device)
        if device != "meta":  # a checkpoint check computes nothing with the model (its rotations included)
            self._server = CodePredictorServer(self._model, self.config.max_batch, f"{self.name}-frames")
        self.handoff = None  # set by a fused Talker: the frames it computed, by run

    def accepts(self, width: int, groups: int) -> bool:
        """Whether a Talker of this hidden width and number of code groups fits this code predictor."""
        return self._model.args.text.dim == width and self._model.args.n_groups == groups

    def fused_frames(self, items: list) -> list[list[int]]:
        """A fused Talker's frames (FrameItems of one of its batches), at most max_batch rows per call."""
        step = self.config.max_batch
        return [codes for i in range(0, len(items), step) for codes in self._server.compute(items[i:i + step])]

    def sampling(self, run: Any) -> tuple[Any, Any]:
        """This node's (SamplingParams, generator) for `run` (a RunContext of any node of the run)."""
        from dataclasses import replace

        from ..common.sampling import SamplingParams, make_generator

        c = self.config
        params = SamplingParams(greedy=c.greedy, temperature=c.temperature, top_k=c.top_k, top_p=c.top_p)
        return params, None if c.greedy else make_generator(replace(run, node=self.name).node_seed(), self._device)

    def stream(self, requests: Iterator[FrameRequest]) -> Iterator[tuple[str, CodecFrame]]:
        from ...runtime.context import current_run

        run = current_run()
        if self.handoff is not None:
            try:
                for r in requests:
                    yield "frames", CodecFrame(r.index, self.handoff.take(run.run_id, r.index))
            finally:
                if run.cancelled.is_set():
                    self.handoff.drop(run.run_id)
            return
        yield from self._frames(requests, run)

    def _frames(self, requests: Iterator[FrameRequest], run: Any) -> Iterator[tuple[str, CodecFrame]]:
        from ..qwen3.loop_handoff import FrameItem

        model = self._model
        params, generator = self.sampling(run)
        dtype, C, V = model.heads.dtype, model.args.text.dim, model.args.talker_vocab
        for r in requests:
            if r.hidden.shape[-1] != C:
                raise UserError(f"frame request {r.index}: hidden width {r.hidden.shape[-1]}, but this code "
                                f"predictor's is {C} (talker and code predictor from different checkpoints?)")
            if not 0 <= r.code0 < V:
                raise UserError(f"frame request {r.index}: code 0 = {r.code0} is outside the talker's codec "
                                f"vocabulary (0..{V - 1})")
            item = FrameItem(r.hidden.to(self._device, dtype).reshape(C), r.code0, params, generator)
            yield "frames", CodecFrame(r.index, tuple(self._server.frame(item)))  # batched with other runs
