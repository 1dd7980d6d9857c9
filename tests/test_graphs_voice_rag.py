"""voice_rag end to end on a question spoken by Piper: the transcript is the question, the right passage comes
first, the answer holds its key fact, and the spoken answer
transcribes back to the written one. A typed question takes the same path from retrieval on."""
from __future__ import annotations

from pathlib import Path

import soundfile
from speech_audio import STEADY_VOICE, spoken, word_error_rate

from omnigraph.runtime.executor_local import LocalExecutor
from omnigraph.runtime.payloads import AudioChunk, Waveform
from omnigraph.runtime.validate import load_graph
from omnigraph.testing import run_node

QUESTION = "What is the default max batch of the Thinker?"
STEADY = {("speak", field): value for field, value in STEADY_VOICE.items()}


def test_a_spoken_question_is_answered_in_writing_and_speech(tmp_path: Path) -> None:
    speech = spoken(QUESTION)
    soundfile.write(tmp_path / "question.wav", speech.samples.numpy(), speech.sample_rate)
    with LocalExecutor(load_graph("voice_rag", overrides=STEADY)) as executor:
        run = executor.start({"audio": str(tmp_path / "question.wav")})
        order = [event.name for event in run.events()]
        result = run.result()
        typed = executor.run({"text": QUESTION}).outputs
    out = result.outputs
    assert word_error_rate(QUESTION, out["question"].text) <= 0.2  # "max batch" may come back as one word
    assert out["passages"].items[0].source == "batching.md" == typed["passages"].items[0].source
    answer = "".join(piece.text for piece in out["text"])
    assert "16" in answer
    assert "audio" in order  # streamed sentence by sentence (its timing: test_graphs_voice.py)
    heard = run_node("asr", {"audio": Waveform(AudioChunk.join(out["audio"]).samples, 22050)})["text"].text
    assert word_error_rate(answer, heard) <= 0.25
