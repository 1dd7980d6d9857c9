"""Still images with Pillow (as the Qwen reference pipelines read them): whatever format Pillow decodes."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import fail

# Formats Pillow recognises but holds video or only identifies (no pixel decoder): left to PyAV.
NOT_STILL = {"MPEG"}


def open_image(path: Path):
    """The file as a Pillow image if Pillow recognises it as a still image it can decode, else None."""
    from PIL import Image, ImageFile, UnidentifiedImageError

    try:
        image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise fail(path, f"is too large an image to decode safely ({exc})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    if image.format in NOT_STILL or isinstance(image, ImageFile.StubImageFile):
        image.close()
        return None
    return image


def decode_image(path: Path, image) -> np.ndarray:
    """[H, W, 3] uint8 RGB (the first frame of an animated or multi-page image)."""
    from PIL import Image

    try:
        with image:
            image.load()
            return np.array(image.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise fail(path, f"is a corrupt or truncated {image.format} image ({exc})") from None

