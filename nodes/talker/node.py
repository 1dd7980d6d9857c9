"""talker: TalkerContext + the reply's text tokens -> codebook 0 of each codec frame, looping with the code
predictor (which returns each frame's full codes before the next step).

Text: `tokens` are Thinker-vocabulary ids of the reply (from the thinker or any text source), re-embedded here
with the Thinker's embed table and the Talker's text_projection. As in the reference, the LAST token of the
stream (usually <|im_end|>) is never used, so the node reads one token ahead: it prefills once it has the
context and the first token (plus the next one, to know the first is not the last), then feeds one more token
per frame, then tts_eos, then tts_pad; it waits when text comes slower than frames. A stream of fewer than two
tokens gives no frames.

Concurrent runs share the loaded Talker's forward passes (server.py): one KV cache with a slot per run, the
decode steps of the runs in step computed as one batch; each run samples its own code 0 (its suppress mask,
repetition penalty history, generator), so a run's codes are those it gets alone. A run tells the server when
it waits for text, so a slow text stream never holds the others.
"""
from __future__ import annotations

from typing import Any, Iterator

from pydantic import Field

from ...runtime.checkpoint_config import check_budget
from ...runtime.device import DTypeSetting
from ...runtime.errors import UserError
from ...runtime.node import Node, NodeConfig
from ...runtime.ports import Input, Output
from ..common.token_payloads import TokenId
from ..qwen.payloads import CodecCodes, CodecFrame, FrameRequest, TalkerContext
from ..qwen3.default_checkpoint import tiny_random_checkpoint
from ..qwen3.speech_output import NO_TALKER

class _Lookahead:
    """Token ids of a stream, with `status(k)`: 'use' (token k exists and is not the last), 'last' or 'gone'."""

    def __init__(self, items: Iterator[TokenId]):
        self.items, self.ids, self.ended = iter(items), [], False

    def status(self, k: int) -> str:
        while not self.ended and len(self.ids) < k + 2:
            try:
                self.ids.append(int(next(self.items).id))
            except StopIteration:
                self.ended = True
        return "use" if k + 1 < len(self.ids) else "last" if k + 1 == len(self.ids) else "gone"

    def known(self, k: int) -> bool:
        """Whether `status(k)` answers without reading the stream."""
        return self.ended or len(self.ids) >= k + 2


class Talker(Node):
    kind = "talker"
    needs_checkpoint = True
    default_checkpoint = staticmethod(tiny_random_checkpoint)

    class Config(NodeConfig):
        speaker: str = Field("ethan", description="Voice: a name of talker_config.speaker_id (case-insensitive).")
        greedy: bool = Field(False, description="Pick the most likely code instead of sampling. As in transformers, "
                             "the repetition penalty still applies to greedy choices.")
        temperature: float = Field(0.9, gt=0, description="Sampling temperature.")
        top_k: int = Field(50, ge=0, le=1_000_000, description="Keep the k most likely codes; 0 = all.")
        top_p: float = Field(1.0, gt=0, le=1, description="Nucleus probability mass.")
        repetition_penalty: float = Field(1.05, gt=0, description="Penalty on codes generated so far (also when "
                                          "greedy, as transformers applies it before choosing).")
        max_frames: int = Field(4095, ge=1, le=100_000, description="Most frames to make. The reference's "
                                "talker_max_new_tokens = max_frames + 1: its last sampled code (EOS or the budget's "
                                "last) makes no frame.")
        dtype: DTypeSetting = Field("auto", description="Weights and activations dtype (auto: the checkpoint's on "
                                                        "CUDA, float32 on CPU).")
        max_batch: int = Field(16, ge=1, le=4096, description="Most concurrent runs' decode steps computed together "
                               "(more wait for the next step).")

    inputs = (
        Input("context", TalkerContext, doc="The prompt's user turns (thinker or text_context)."),
        Input("tokens", TokenId, stream=True, doc="The reply's text ids (Thinker vocabulary); the last is dropped."),
        Input("frames", CodecFrame, stream=True, doc="Loop input: each frame's codes from the code predictor."),
    )
    outputs = (
        Output("requests", FrameRequest, stream=True, doc="Per frame: last normed hidden state and code 0."),
        Output("codes", CodecCodes, doc="All frames x codebooks, at the end."),
    )

    def setup(self, device: str, checkpoint: Any) -> None:
        import torch

        from ..qwen.special_tokens import media_token_ids
        from ..qwen3.thinker_embeddings import load_embed_table

        from .model import TalkerArgs
        from .prompt import TalkerIds
        from .server import TalkerServer
        from .weights import load_talker

        config, dtype = checkpoint.config, self.dtype
        talker_config = checkpoint.section("talker_config", NO_TALKER)
        limit = TalkerArgs.from_hf_config(config).text.max_positions
        check_budget(self.name, "max_frames", self.config.max_frames, limit,
                     "talker_config.text_config.max_position_embeddings")
        speakers = {str(k).lower(): int(v) for k, v in (talker_config.get("speaker_id") or {}).items()}
        if self.config.speaker.lower() not in speakers:
            raise UserError(f"node '{self.name}' (talker): unknown speaker '{self.config.speaker}'; this checkpoint "
                            f"has: {', '.join(sorted(speakers)) or 'none'}")
        self._speaker = speakers[self.config.speaker.lower()]
        self._device = device
        self._model = load_talker(checkpoint, self.weights or "talker.", dtype, device)
        self._table = load_embed_table(checkpoint, "thinker.", dtype, device)
        self._ids = TalkerIds.from_hf_config(config)
        self._media = media_token_ids(talker_config)
        V = self._model.args.text.vocab_size
        suppress = torch.zeros(V, dtype=torch.bool, device=device)
        suppress[V - 1024:] = True
        suppress[self._ids.codec_eos] = False
        self._suppress = suppress
        self._server = TalkerServer(self._model, self._table, self.config.max_batch, f"{self.name}-steps")

    def stream(self, context: TalkerContext, tokens: Iterator[TokenId],
               frames: Iterator[CodecFrame]) -> Iterator[tuple[str, Any]]:
        import torch

        from ..common.decode_buffers import TokenHistory
        from ..common.sampling import SamplingParams, apply_repetition_penalty, make_generator, sample
        from ...runtime.context import current_run

        from .prompt import TextEmbedder, check_text_ids, talker_prompt

        run, c, model, ids = current_run(), self.config, self._model, self._ids
        params = SamplingParams(greedy=c.greedy, temperature=c.temperature, top_k=c.top_k, top_p=c.top_p)
        generator = None if c.greedy else make_generator(run.node_seed(), self._device)
        text, done = _Lookahead(tokens), []
        if text.status(0) != "use":
            yield "codes", CodecCodes(())
            return
        with torch.inference_mode():
            embed = TextEmbedder(model, self._table)
            prompt, positions, delta = talker_prompt(model, embed, context, text.ids[0], self._speaker, ids,
                                                     self._media)
        P, N = prompt.shape[1], c.max_frames
        G, Vc = model.args.n_groups, model.args.codebook_size
        slot, logits, hidden = self._server.prefill(prompt, positions, P + N)
        try:
            history = TokenHistory(self._device)
            for s in range(N):  # choose code 0 of frame s (after frame N-1 the reference's last code is not needed)
                with torch.inference_mode():
                    logits = logits.float().masked_fill(self._suppress, float("-inf"))
                    if c.repetition_penalty != 1.0 and s:
                        logits = apply_repetition_penalty(logits, history.view(), c.repetition_penalty)
                    code0 = sample(logits, params, generator)  # [1]
                    history.append(code0)
                code = int(code0[0])
                if code == ids.codec_eos:
                    break
                yield "requests", FrameRequest(s, hidden[0].clone(), code)
                if s + 1 < N and not text.known(s + 1):  # read the next step's text while the frame computes
                    self._server.away(slot)  # the text may take long: batches do not wait for this run
                    text.status(s + 1)
                    self._server.back(slot)
                frame = next(frames, None)
                if (frame is None or frame.index != s or len(frame.codes) != G or frame.codes[0] != code
                        or not all(0 <= x < Vc for x in frame.codes[1:])):
                    raise RuntimeError(f"talker expected frame {s} with code 0 = {code} and {G - 1} more codes "
                                       f"below {Vc} back from the code predictor, got "
                                       f"{frame if frame is None else (frame.index, frame.codes)}")
                done.append(tuple(frame.codes))
                if s + 1 == N or run.cancelled.is_set():
                    break
                status = text.status(s + 1)  # trailing text of step s + 1: token s + 1, then tts_eos, then tts_pad
                trailing = text.ids[s + 1] if status == "use" else ids.tts_eos if status == "last" else ids.tts_pad
                check_text_ids([trailing], self._table.shape[0])
                # the decode step after frame s sits at position P + s + delta; batched with other runs' steps
                logits, hidden = self._server.step(slot, frame.codes, trailing, P + s + delta)
        finally:
            self._server.release(slot)
        yield "codes", CodecCodes(tuple(done))
