"""wav_writer: writes a stream of audio chunks to a 32-bit float WAV file as they arrive."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from pydantic import Field

from ...runtime.node import Node, NodeConfig
from ...runtime.payloads import AudioChunk, FilePath
from ...runtime.ports import Input, Output
from ...runtime.writable import OutputFile, check_writable_file


class WavWriter(Node):
    kind = "wav_writer"

    class Config(NodeConfig):
        path: OutputFile = Field(description="File to write (parent folders are created; checked before the run).")

    inputs = (Input("audio", AudioChunk, stream=True, doc="Chunks in order, one sample rate."),)
    outputs = (Output("file", FilePath, doc="The file written."),)

    def stream(self, audio: Iterator[AudioChunk]) -> Iterator[tuple[str, FilePath]]:
        import soundfile

        path = Path(self.config.path)
        check_writable_file(path, f"the file of node '{self.name}'")  # a clear error if it changed since the check
        out = None
        try:
            for chunk in audio:
                if out is None:
                    out = soundfile.SoundFile(path, "w", samplerate=chunk.sample_rate, channels=1, subtype="FLOAT")
                elif chunk.sample_rate != out.samplerate:
                    raise ValueError(f"chunk {chunk.index} is at {chunk.sample_rate} Hz; the file is at "
                                     f"{out.samplerate} Hz")
                out.write(chunk.samples.detach().cpu().float().numpy())
                out.flush()
        finally:
            if out is not None:
                out.close()
        if out is not None:
            yield "file", FilePath(str(path))
