"""The caption tests' helpers import media_files from the media_decode tests."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nodes" / "media_decode"))
