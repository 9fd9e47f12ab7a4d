"""What an uploaded file is, judged from its bytes, and the pictures made safe.

- `judge`: the type from the file's first bytes (filetype's signatures), or plain text
  when the whole file is UTF-8 without NUL bytes; never the client's header or name.
- `reencode`: a picture decoded and written again by Pillow: metadata (EXIF, GPS,
  comments, text chunks, XMP, a colour profile) gone,
  orientation applied, the first frame's pixels only for a still image, plus a
  thumbnail. A file that does not decode, or has more pixels than Pillow's
  `Image.MAX_IMAGE_PIXELS`, is refused.
- `clean_name`: the name shown and offered for download: no folders, no control or
  direction-changing characters.

Everything here is CPU work on whole files: callers run it off the event loop.
"""

from __future__ import annotations

import codecs
import os
import tempfile
import unicodedata

import filetype
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
THUMBNAIL = (480, 480)
THUMBNAIL_TYPE = "image/webp"  # small for photos, and keeps transparency
CHUNK = 64 * 1024
MAX_FRAMES = 500  # an animation keeps at most this many frames


class Refused(Exception):
    """The file is not accepted; `reason` says why, for the error's message."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def judge(path: str, name: str) -> str:
    """The file's content type, from its bytes."""
    kind = filetype.guess(path)
    if kind is not None:
        return kind.mime
    if _is_text(path):
        return "text/csv" if name.lower().endswith(".csv") else "text/plain"
    return "application/octet-stream"


def _is_text(path: str) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            if b"\x00" in chunk:
                return False
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                return False
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return os.path.getsize(path) > 0


def reencode(path: str, content_type: str) -> tuple[bytes, bytes, str, int, int]:
    """(the picture, its thumbnail, the thumbnail's type, width, height), written anew."""
    try:
        with Image.open(path) as opened:
            width, height = opened.size
            if width * height > Image.MAX_IMAGE_PIXELS:
                raise Refused(f"The picture has too many pixels ({width} × {height}).")
            animated = getattr(opened, "is_animated", False) and content_type == "image/gif"
            frames_count = min(getattr(opened, "n_frames", 1), MAX_FRAMES) if animated else 1
            if frames_count * width * height > Image.MAX_IMAGE_PIXELS:
                # Each frame is decoded at the full canvas: a small GIF of many frames
                # on a large canvas would take gigabytes.
                raise Refused(f"The animation has too many pixels ({frames_count} frames).")
            if animated:
                frames = [ImageOps.exif_transpose(f.copy()) for f in _frames(opened)]
                picture = frames[0]
            else:
                opened.seek(0)
                picture = ImageOps.exif_transpose(opened)  # loads the pixels; applies orientation
                frames = [picture]
    except Refused:
        raise
    except Image.DecompressionBombError:  # Pillow's own refusal, at twice the limit
        raise Refused("The picture has too many pixels.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise Refused("The picture could not be read.") from None
    for frame in frames:
        _keep_pixels_only(frame)
    fmt = IMAGE_TYPES[content_type]
    # A real file, not a BytesIO: Pillow then encodes straight to its descriptor and lets
    # go of Python's lock meanwhile; into a BytesIO it encodes holding it, and a 12-megapixel
    # JPEG held the event loop for about 270 ms (docs/BENCHMARKS.md, "Photos under load").
    out = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
    if fmt == "JPEG":
        picture.convert("RGB").save(out, "JPEG", quality=88, optimize=True)
    elif animated:
        frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], loop=0)
    else:
        picture.save(out, fmt)  # no exif=, icc_profile=, pnginfo=, and `info` emptied above
    thumb = picture.copy()
    thumb.thumbnail(THUMBNAIL)
    small = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
    has_alpha = thumb.mode in ("RGBA", "LA", "P")
    thumb.convert("RGBA" if has_alpha else "RGB").save(small, "WEBP", quality=80)
    return _read_all(out), _read_all(small), THUMBNAIL_TYPE, picture.width, picture.height


def _read_all(f) -> bytes:
    with f:
        f.seek(0)
        return f.read()


# What Pillow writes back from an image's `info` that is not pixels: comments (JPEG COM,
# GIF comment blocks), PNG text chunks, XMP, EXIF, a colour profile: bytes the sender
# chose. Only what frames need to show and play stays.
PLAYBACK_INFO = {"transparency", "duration", "disposal", "background"}


def _keep_pixels_only(image: Image.Image) -> None:
    for key in set(image.info) - PLAYBACK_INFO:
        del image.info[key]


def _frames(image: Image.Image):
    for index in range(min(getattr(image, "n_frames", 1), MAX_FRAMES)):
        image.seek(index)
        yield image


# Characters that change how a name reads without being seen: direction overrides and
# isolates, marks, zero-width joiners.
INVISIBLE = {"Cf", "Cc", "Cs", "Co", "Cn", "Zl", "Zp"}


def clean_name(name: str | None) -> str:
    """The last path part of `name`, without control or format characters, at most
    255 characters; "file" when nothing is left."""
    name = (name or "").replace("\\", "/").split("/")[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in INVISIBLE)
    name = " ".join(name.split()).strip(" .")
    return name[:255] or "file"
