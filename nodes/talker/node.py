"""talker: TalkerContext + the reply's text tokens -> codebook 0 of each codec frame, looping with the code
predictor (which returns each frame's full codes before the next step).

Text: `tokens` are Thinker-vocabulary ids of the reply (from the thinker or any text source), re-embedded here
with the Thinker's embed table and the Talker's text_projection. As in the reference, the LAST token of the
stream (usually <|im_end|>) is never used, so the node reads one token ahead: it prefills once it has the
context and the first token (computed while the next one comes, which tells whether the first was the last),
then feeds one more token per frame, then tts_eos, then tts_pad; it waits when text comes slower than frames. A
stream of fewer than two tokens gives no frames.

Concurrent runs share the loaded Talker's forward passes (server.py): one KV cache with a slot per run, the
decode steps of the runs in step computed as one batch; each run's code 0 is chosen with its own settings,
repetition history and generator, so a run's codes are those it gets alone. With the code predictor loaded in
the same process (`fuse_loop`), the same batches compute its frames too, and the code predictor hands each on.
A run tells the server when it waits for text, so a slow text stream never holds the others.
"""
from __future__ import annotations

from typing import Any, Iterator

from pydantic import Field, model_validator

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
        self._read(k + 2)
        return "use" if k + 1 < len(self.ids) else "last" if k + 1 == len(self.ids) else "gone"

    def has(self, k: int) -> bool:
        """Whether token k exists (reading no further than it)."""
        self._read(k + 1)
        return k < len(self.ids)

    def _read(self, count: int) -> None:
        while not self.ended and len(self.ids) < count:
            try:
                self.ids.append(int(next(self.items).id))
            except StopIteration:
                self.ended = True

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
        min_frames: int = Field(0, ge=0, le=100_000, description="Fewest frames: the codec EOS is never chosen "
                                "before (transformers' talker min_new_tokens).")
        dtype: DTypeSetting = Field("auto", description="Weights and activations dtype (auto: the checkpoint's on "
                                                        "CUDA, float32 on CPU).")
        max_batch: int = Field(16, ge=1, le=4096, description="Most concurrent runs' decode steps computed together "
                               "(more wait for the next step).")

        @model_validator(mode="after")
        def _min_within_max(self):
            if self.min_frames > self.max_frames:
                raise ValueError(f"min_frames ({self.min_frames}) must be at most max_frames ({self.max_frames})")
            return self

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
        from ..qwen.config_agreement import check_talker_inputs
        from ..qwen3.thinker_embeddings import load_embed_table

        from .model import TalkerArgs
        from .prompt import TalkerIds
        from .server import TalkerServer
        from .weights import load_talker

        config, dtype = checkpoint.config, self.dtype
        talker_config = checkpoint.section("talker_config", NO_TALKER)
        check_talker_inputs(config, "thinker_hidden_size")
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
        self._server = TalkerServer(self._model, self._table, suppress, self._ids.codec_eos, self.config.max_batch,
                                    f"{self.name}-steps")
        self._partner = self._handoff = None  # set by fuse_loop
        self._readers: dict[tuple[str, str], Any] = {}  # (node, port) -> a reader of the fused loop's frames

    def fuse_loop(self, partner: Node) -> None:
        """Compute the loop's code predictor frames in this node's batches, when `partner` (the code predictor
        feeding `frames`, loaded in this process) fits: same device, dtype and width."""
        from ..qwen3.loop_handoff import FusablePredictor, Handoff

        args = self._model.args
        if (self._handoff is not None or not isinstance(partner, FusablePredictor) or partner.device != self.device
                or partner.dtype != self.dtype or not partner.accepts(args.text.dim, args.n_groups)):
            return
        self._partner, self._handoff = partner, Handoff()
        partner.handoff = self._handoff
        self._server.predictor = partner.fused_frames

    def announce_loop_output(self, consumer: Any, port: str) -> None:
        """Once fused, tell `consumer` (its input `port`: Code2Wav's frames) of each batch's frames before they
        are handed on (runtime/loops.py)."""
        if self._handoff is not None:
            self._readers[(consumer.name, port)] = consumer
            self._server.announce = self._announce

    def _announce(self, notices: list[tuple[str, int]]) -> None:
        for (_, port), consumer in self._readers.items():
            consumer.items_coming(port, notices)

    def stream(self, context: TalkerContext, tokens: Iterator[TokenId],
               frames: Iterator[CodecFrame]) -> Iterator[tuple[str, Any]]:
        import torch

        from ..common.decode_buffers import TokenHistory
        from ..common.row_choice import RowChoice
        from ..common.sampling import SamplingParams, make_generator
        from ...runtime.context import current_run

        from .prompt import TextEmbedder, talker_prompt
        from .server import Voice

        run, c, model, ids = current_run(), self.config, self._model, self._ids
        params = SamplingParams(greedy=c.greedy, temperature=c.temperature, top_k=c.top_k, top_p=c.top_p)
        generator = None if c.greedy else make_generator(run.node_seed(), self._device)
        text, done = _Lookahead(tokens), []
        if not text.has(0):
            yield "codes", CodecCodes(())
            return
        with torch.inference_mode():
            embed = TextEmbedder(model, self._table)
            prompt, positions, delta = talker_prompt(model, embed, context, text.ids[0], self._speaker, ids,
                                                     self._media)
        P, N = prompt.shape[1], c.max_frames
        handoff = self._handoff
        voice = Voice(RowChoice(params, generator, c.repetition_penalty, TokenHistory(self._device)),
                      None if handoff is None else self._partner.sampling(run), run.run_id, c.min_frames)
        pending = self._server.prefill(voice, prompt, positions, P + N)  # computed while token 1 comes
        try:
            speaks = text.status(0) == "use"  # a reply of one token makes no frames (its last is never used)
            out, pending = pending.result(), None
            for s in range(N if speaks else 0):  # frame s (after frame N-1 the reference's last code is not needed)
                if out.code0 == ids.codec_eos:
                    break
                if handoff is not None:
                    handoff.put(run.run_id, s, out.codes)
                self._server.away(voice)  # handing the request on may wait for the code predictor's thread
                yield "requests", FrameRequest(s, out.hidden[0].clone(), out.code0)
                self._server.back(voice)
                more = s + 1 < N and not run.cancelled.is_set()
                trailing = self._trailing(text, s + 1, voice) if more else None  # read while the frame computes
                if more and handoff is not None:  # fused: the frame is known, the next step goes in at once
                    pending = self._server.step(voice, trailing, P + s + delta)
                frame = next(frames, None)
                self._check_frame(frame, s, out)
                done.append(tuple(frame.codes))
                if not more or run.cancelled.is_set():
                    break
                if pending is None:  # the decode step after frame s sits at position P + s + delta
                    pending = self._server.step(voice, trailing, P + s + delta, tuple(frame.codes))
                out, pending = pending.result(), None
        finally:
            if pending is not None:  # a step queued before the run stopped: it ends before the slot goes
                pending.exception()
            self._server.release(voice)
            if handoff is not None and run.cancelled.is_set():
                handoff.drop(run.run_id)
        yield "codes", CodecCodes(tuple(done))

    def _trailing(self, text: _Lookahead, k: int, voice: Any) -> int:
        """The trailing text id of step k: token k, then tts_eos, then tts_pad (a run waiting for its text is
        away: batches do not wait for it)."""
        from .prompt import check_text_ids

        if not text.known(k):
            self._server.away(voice)
            text.status(k)
            self._server.back(voice)
        status, ids = text.status(k), self._ids
        trailing = text.ids[k] if status == "use" else ids.tts_eos if status == "last" else ids.tts_pad
        check_text_ids([trailing], self._table.shape[0])
        return trailing

    def _check_frame(self, frame: CodecFrame | None, s: int, out: Any) -> None:
        G, Vc = self._model.args.n_groups, self._model.args.codebook_size
        if (frame is None or frame.index != s or len(frame.codes) != G or frame.codes[0] != out.code0
                or not all(0 <= x < Vc for x in frame.codes[1:])
                or (out.codes is not None and tuple(frame.codes) != out.codes)):
            raise RuntimeError(f"talker expected frame {s} with code 0 = {out.code0} and {G - 1} more codes "
                               f"below {Vc} back from the code predictor, got "
                               f"{frame if frame is None else (frame.index, frame.codes)}")
