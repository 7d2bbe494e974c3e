"""An image file's format, size and completeness from its header and its last bytes, without decoding it.

Refuses before any decoder runs: a file that is not PNG, JPEG, BMP or GIF, one cut short (its end
marker missing, or fewer bytes than its header states), and one whose header states more pixels
than the cap (a decompression bomb: a small file that decodes to gigabytes).
"""

from __future__ import annotations

import io
import os
import struct

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_TAIL = 1024


class BadImage(Exception):
    """Why a file cannot be used as an image (the message names no path: the caller does)."""


class TooLarge(BadImage):
    """The header states more pixels than the cap."""


def probe(path: str, max_pixels: int) -> tuple[str, int, int]:
    """(format, width, height) of an image file; BadImage (or TooLarge) if it is unusable."""
    fmt, w, h, _ = inspect(path, max_pixels)
    return fmt, w, h


def inspect(path: str, max_pixels: int) -> tuple[str, int, int, bool]:
    """:func:`probe`, and whether the file is a 16-bit grayscale PNG (see :func:`eight_bit`)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            raise BadImage("the file is empty")
        head = fh.read(64 * 1024)
        fh.seek(max(0, size - _TAIL))
        tail = fh.read(_TAIL)
    gray16 = False
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        fmt, (w, h) = "PNG", _png(head)
        gray16 = head[24:26] == b"\x10\x00"  # IHDR: bit depth 16, colour type 0 (grayscale)
        if not tail.endswith(b"IEND\xaeB`\x82"):
            raise BadImage("the PNG file is truncated (no IEND chunk at its end)")
    elif head.startswith(b"\xff\xd8"):
        fmt, (w, h) = "JPEG", _jpeg(head)
        if b"\xff\xd9" not in tail:
            raise BadImage("the JPEG file is truncated (no end-of-image marker)")
    elif head[:6] in (b"GIF87a", b"GIF89a"):
        if len(head) < 10:
            raise BadImage("the GIF header is truncated")
        fmt, (w, h) = "GIF", struct.unpack("<HH", head[6:10])
        if not tail.rstrip(b"\x00").endswith(b";"):
            raise BadImage("the GIF file is truncated (no trailer)")
    elif head.startswith(b"BM"):
        fmt, (w, h, declared) = "BMP", _bmp(head)
        if size < declared:
            raise BadImage(f"the BMP file is truncated ({size:,} bytes of the {declared:,} its header states)")
    else:
        raise BadImage("not a PNG, JPEG, BMP or GIF image")
    if w <= 0 or h <= 0:
        raise BadImage(f"the {fmt} header states a {w}x{h} image")
    if w * h > max_pixels:
        raise TooLarge(f"the {fmt} header states {w}x{h} = {w * h:,} pixels, over the cap of {max_pixels:,} "
                       "(a decompression bomb?)")
    return fmt, w, h, gray16


def eight_bit(path: str) -> io.BytesIO:
    """A 16-bit grayscale PNG as the 8-bit PNG that TensorFlow's decoder makes of it (the high byte of each
    pixel), for Keras's Pillow loader: Pillow opens it in mode `I;16`, which that loader passes on as 0..65535
    for one channel and clips to 255 for three, where `image_dataset_from_directory` on TensorFlow gives
    0..255. So an image reads the same on every backend."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        pixels = np.asarray(img).astype(np.uint32)
    out = io.BytesIO()
    Image.fromarray((np.minimum(pixels, 65535) >> 8).astype(np.uint8), mode="L").save(out, format="PNG",
                                                                                      compress_level=0)
    out.seek(0)
    return out


def _png(head: bytes) -> tuple[int, int]:
    if len(head) < 24 or head[12:16] != b"IHDR":
        raise BadImage("the PNG header is truncated or has no IHDR chunk")
    w, h = struct.unpack(">II", head[16:24])
    return int(w), int(h)


def _jpeg(head: bytes) -> tuple[int, int]:
    i = 2
    while i + 9 < len(head):
        if head[i] != 0xFF:
            raise BadImage("the JPEG header is corrupt (no marker where one belongs)")
        marker = head[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        length = struct.unpack(">H", head[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", head[i + 5:i + 9])
            return int(w), int(h)
        i += 2 + length
    raise BadImage("the JPEG header is truncated (no frame header found)")


def _bmp(head: bytes) -> tuple[int, int, int]:
    if len(head) < 26:
        raise BadImage("the BMP header is truncated")
    declared = struct.unpack("<I", head[2:6])[0]
    dib = struct.unpack("<I", head[14:18])[0]
    if dib == 12:
        w, h = struct.unpack("<HH", head[18:22])
    else:
        w, h = struct.unpack("<ii", head[18:26])
    return int(w), abs(int(h)), int(declared)
