"""Speech nodes: Piper and Whisper real-time factors, and VAD speed, each against the duration of the audio.

    python examples/bench/speech_nodes.py [--threads N] [--repeats 3]

Piper (`piper_tts`, en_US joe) speaks a paragraph of five sentences: real-time factor (compute seconds per second
of speech) and the time to its first chunk. Whisper tiny.en (`asr`, int8) transcribes a spoken question of
about 5 s, whole and as VAD clips. Silero (`vad`) segments 60 s of speech and silence. Each figure is the
best of --repeats runs, after one warm-up. A factor below 1 is faster than real time.
Measured on the shared 2-core machine under a load average of 8 to 12 (so slower than on an idle one), 2 threads:
Piper 14.4 s of speech in 5.5-6.5 s (real-time factor 0.39-0.45), first chunk after 1.4-1.7 s; Whisper on a
5.0-5.3 s question 1.8-2.3 s (factor 0.35-0.46), 2.0-2.4 s with VAD first; VAD 60 s in 0.6-1.1 s (55-100x real
time).
"""
from __future__ import annotations

import argparse
import time

import torch

PARAGRAPH = ("Omnigraph runs models as a graph of typed nodes. Each node loads its own weights. Streams flow "
             "between nodes as soon as they are produced. The first audio chunk leaves early. Graphs are "
             "written in YAML and checked before anything loads.")
QUESTION = "Could you please tell me which of the shipped graphs turns a spoken question into a written answer?"


def loaded(kind: str):
    from omnigraph.runtime.registry import default_registry

    node = default_registry().get(kind)()
    node.load("cpu")
    return node


def best(repeats: int, work) -> tuple[float, object]:
    """Fastest wall time of `repeats` calls (after one warm-up call), and the last result."""
    result = work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return min(times), result


def piper_figures(piper, repeats: int):
    from omnigraph.runtime.payloads import AudioChunk, Text

    def first_chunk() -> float:
        start = time.perf_counter()
        next(piper.stream(text=Text(PARAGRAPH)))
        return time.perf_counter() - start

    seconds, chunks = best(repeats, lambda: [c for _, c in piper.stream(text=Text(PARAGRAPH))])
    audio = AudioChunk.join(chunks)
    first = min(first_chunk() for _ in range(repeats))
    print(f"piper_tts: {audio.seconds:5.2f} s of speech ({len(chunks)} sentences) in {seconds:5.2f} s: "
          f"real-time factor {seconds / audio.seconds:.3f}; first chunk after {first:.3f} s")
    return audio


def whisper_figures(piper, vad, asr, repeats: int) -> None:
    from omnigraph.runtime.payloads import AudioChunk, Text

    question = AudioChunk.join([c for _, c in piper.stream(text=Text(QUESTION))])
    whole_s, out = best(repeats, lambda: dict(asr.stream(audio=question)))
    print(f"asr: a {question.seconds:4.2f} s question, whole, in {whole_s:5.3f} s: real-time factor "
          f"{whole_s / question.seconds:.3f}  ({out['text'].text!r})")

    def vad_then_asr():
        clips = [item for port, item in vad.stream(audio=question) if port == "speech"]
        return dict(asr.stream(speech=iter(clips)))

    both_s, _ = best(repeats, vad_then_asr)
    print(f"vad + asr on the same question: {both_s:5.3f} s: real-time factor {both_s / question.seconds:.3f}")


def vad_figures(vad, speech, repeats: int) -> None:
    from omnigraph.runtime.payloads import Waveform

    rate = speech.sample_rate
    gap = torch.zeros(2 * rate)
    pieces = []
    while sum(p.shape[0] for p in pieces) < 60 * rate:
        pieces += [speech.samples, gap]
    audio = Waveform(torch.cat(pieces)[:60 * rate], rate)
    seconds, items = best(repeats, lambda: [item for port, item in vad.stream(audio=audio) if port == "segments"])
    print(f"vad: 60 s at {rate} Hz in {seconds:5.3f} s ({60 / seconds:.0f}x real time, {len(items)} segments)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (Piper and Whisper follow it)")
    parser.add_argument("--repeats", type=int, default=3)
    opts = parser.parse_args()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    print(f"{torch.get_num_threads()} threads")
    piper, vad, asr = loaded("piper_tts"), loaded("vad"), loaded("asr")
    speech = piper_figures(piper, opts.repeats)
    whisper_figures(piper, vad, asr, opts.repeats)
    vad_figures(vad, speech, opts.repeats)


if __name__ == "__main__":
    main()
