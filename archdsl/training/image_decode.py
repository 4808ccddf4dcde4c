"""Image files decoded to uint8 arrays, in forked worker processes when it pays and is safe.

    h, w = image_size(paths[0], show)                  # from its header: nothing decoded yet
    gray = read_headers(paths, show, (paths[0], h, w)) # headers only: grayscale or not, each
    images = decode_images(paths, show, (paths[0], h, w))  # in file order; (H, W) gray or (H, W, 3)

Only PNG and JPEG are read, told by their content, not their name: PIL opens a file with those
two plugins only (`FORMATS`), so no other decoder (EPS would run Ghostscript; TIFF, BMP, ...)
ever sees a data file. A file that is not a PNG or JPEG image, or is damaged, stops the decoding
with a DataError naming it (`show` turns a path into what the message prints: for an archive,
archive:member). Grayscale modes decode to one channel, every other mode to RGB; alpha is dropped.

Sizes come from the header (PIL reads it without decoding): an image of more pixels than
`max_image_pixels()` (MAX_IMAGE_PIXELS, 4096x4096, unless $ARCHDSL_MAX_IMAGE_PIXELS says
otherwise), or of another size than the first image, is refused before any of it is decoded.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
from PIL import Image, JpegImagePlugin, PngImagePlugin, UnidentifiedImageError  # noqa: F401 (registers both)

from .progress import Progress
from archdsl.errors import DataError
from archdsl.fileio import one_line

FORMATS = ("PNG", "JPEG")  # the only PIL plugins a data file is opened with
GRAY_MODES = frozenset({"L", "1", "I", "I;16", "I;16B", "I;16L", "I;16N", "F", "LA", "La"})
MAX_IMAGE_PIXELS = 4096 * 4096  # the default bound on one image (48 MB as RGB); $ARCHDSL_MAX_IMAGE_PIXELS
# decode in worker processes only when there is enough to amortise starting them
POOL_MIN_FILES = 4000
POOL_CHUNK = 1000
SERIAL_CHUNK = 100  # decoding here, progress is told after each SERIAL_CHUNK files
BAD_FILE_HINT = "delete or replace the file; a class folder may hold only PNG or JPEG images"


class Refused(NamedTuple):
    """Why a worker stopped at `path`: `reason` for the message, or the (height, width) its header gave."""
    path: str
    reason: str | None = None
    size: tuple[int, int] | None = None


def max_image_pixels() -> int:
    """The most pixels an image may have: $ARCHDSL_MAX_IMAGE_PIXELS, else MAX_IMAGE_PIXELS."""
    text = os.environ.get("ARCHDSL_MAX_IMAGE_PIXELS", "").strip()
    if not text:
        return MAX_IMAGE_PIXELS
    if not text.isdigit() or int(text) < 1:
        raise DataError(f"ARCHDSL_MAX_IMAGE_PIXELS must be a whole number of pixels, got {text!r}",
                        hint=f"e.g. ARCHDSL_MAX_IMAGE_PIXELS={MAX_IMAGE_PIXELS}, or unset it "
                             f"(the default is {MAX_IMAGE_PIXELS:,})")
    return int(text)


def image_size(path: str, show: Callable[[Path], str]) -> tuple[int, int]:
    """(height, width) of a PNG or JPEG from its header, refused if it has more than max_image_pixels()."""
    bound = max_image_pixels()
    try:
        with _open(path) as im:
            w, h = im.size
    except Exception as e:
        raise _error(_refused(path, e), show, None) from None
    if h * w > bound:
        square = int(bound ** 0.5)
        as_square = f" ({square}x{square})" if square * square == bound else ""
        raise DataError(f"'{show(Path(path))}' is {h}x{w}, more than the {bound:,} pixels{as_square} an image may have",
                        hint="resize the images to one smaller size; if they are right, raise the bound: "
                             f"ARCHDSL_MAX_IMAGE_PIXELS={h * w}")
    return h, w


def read_headers(paths: list[str], show: Callable[[Path], str], first: tuple[str, int, int]) -> list[bool]:
    """Whether each image is grayscale, from its header alone; each must be a PNG or JPEG of `first`'s
    size (`first`: the path, height and width of the image all are compared with)."""
    return _run(paths, show, first, load=False)


def decode_images(paths: list[str], show: Callable[[Path], str], first: tuple[str, int, int]) -> list[np.ndarray]:
    """Decode in file order, each only after its header showed a PNG or JPEG of `first`'s size:
    in forked worker processes when it pays and is safe, else here."""
    return _run(paths, show, first, load=True)


def _run(paths: list[str], show: Callable[[Path], str], first: tuple[str, int, int], load: bool) -> list:
    size = first[1:]
    chunks = [paths[i:i + POOL_CHUNK] for i in range(0, len(paths), POOL_CHUNK)]
    workers = min(_cpus(), len(chunks))
    out: list = []
    with Progress("decoding images" if load else "reading image headers", len(paths)) as bar:
        if len(paths) >= POOL_MIN_FILES and workers > 1 and can_fork():
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
            try:
                n = len(chunks)
                for chunk in pool.map(_decode_chunk, chunks, [size] * n, [load] * n):
                    out += _checked(chunk, show, first)
                    bar.advance(len(chunk))
                return out
            except BrokenProcessPool:
                out = []  # a worker died (out of memory?): decode here instead
                bar.update(0)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)  # on a bad file, stop at once
        for i in range(0, len(paths), SERIAL_CHUNK):
            out += _checked(_decode_chunk(paths[i:i + SERIAL_CHUNK], size, load), show, first)
            bar.advance(min(SERIAL_CHUNK, len(paths) - i))
    return out


def can_fork() -> bool:
    """Fork only a process without other threads: a forked copy of TensorFlow's may deadlock.

    Not spawn: it re-runs the caller's main script in each worker. `archdsl train` imports
    TensorFlow before it loads the data (its start-up notice first, and a cluster joined before
    a long load), so a first decode of an archive runs in one process, about twice as slowly as
    with workers; the decoded images are cached, so only the first load pays it.
    """
    return ("fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1
            and not any(name in sys.modules for name in ("tensorflow", "torch", "jax")))


def _checked(chunk: list, show: Callable[[Path], str], first: tuple[str, int, int] | None) -> list:
    for item in chunk:
        if isinstance(item, Refused):
            raise _error(item, show, first)
    return chunk


def _error(item: Refused, show: Callable[[Path], str], first: tuple[str, int, int] | None) -> DataError:
    if item.size is not None and first is not None:
        (h, w), (path, h0, w0) = item.size, first
        return DataError(f"'{show(Path(item.path))}' is {h}x{w} but '{show(Path(path))}' is {h0}x{w0}: "
                         "all images must have the same size", hint="resize the images to one size")
    return DataError(f"'{show(Path(item.path))}' {item.reason}", hint=BAD_FILE_HINT)


def _decode_chunk(paths: list[str], size: tuple[int, int] | None = None, load: bool = True) -> list:
    """For each path in order: its decoded image, (H, W) for grayscale or (H, W, 3), if `load`, else
    whether it is grayscale. A header of another `size` than the one given, or a file that is no PNG
    or JPEG or is damaged, is a Refused that stops the chunk."""
    out: list = []
    for path in paths:
        try:
            with _open(path) as im:
                w, h = im.size
                if size is not None and (h, w) != tuple(size):
                    out.append(Refused(path, size=(h, w)))  # never decoded: it may be huge
                    break
                if not load:
                    out.append(im.mode in GRAY_MODES)
                    continue
                im.load()  # decode now: errors raised inside np.asarray would be muddled
                if im.mode not in ("L", "RGB"):
                    im = im.convert("L" if im.mode in GRAY_MODES else "RGB")
                out.append(np.asarray(im, dtype=np.uint8))
        except Exception as e:
            out.append(_refused(path, e))
            break
    return out


def _open(path: str) -> Image.Image:
    """`path` opened as a PNG or JPEG: PIL reads the header (size, mode) and decodes nothing yet."""
    with warnings.catch_warnings():  # PIL warns of images above its own bound (ours is lower)
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(path, formats=FORMATS)


def _refused(path: str, e: Exception) -> Refused:
    if isinstance(e, UnidentifiedImageError):
        return Refused(path, "is not an image file (PNG or JPEG)")
    if isinstance(e, Image.DecompressionBombError):
        return Refused(path, f"is too large to decode ({one_line(e)})")
    return Refused(path, f"is a corrupt or truncated image ({one_line(e)})")  # PIL raises many kinds


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
