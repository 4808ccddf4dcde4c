"""Image files decoded to uint8 arrays, in forked worker processes when it pays and is safe.

    images = decode_images(paths, show=str)   # in file order; (H, W) grayscale or (H, W, 3)

Only PNG and JPEG are read, told by their content, not their name: PIL opens a file with those
two plugins only (`FORMATS`), so no other decoder (EPS would run Ghostscript; TIFF, BMP, ...)
ever sees a data file. A file that is not a PNG or JPEG image, or is damaged, stops the decoding
with a DataError naming it (`show` turns a path into what the message prints: for an archive,
archive:member). Grayscale modes decode to one channel, every other mode to RGB; alpha is dropped.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, JpegImagePlugin, PngImagePlugin, UnidentifiedImageError  # noqa: F401 (registers both)

from archdsl.errors import DataError
from archdsl.fileio import one_line

FORMATS = ("PNG", "JPEG")  # the only PIL plugins a data file is opened with
GRAY_MODES = frozenset({"L", "1", "I", "I;16", "I;16B", "I;16L", "I;16N", "F", "LA", "La"})
# decode in worker processes only when there is enough to amortise starting them
POOL_MIN_FILES = 4000
POOL_CHUNK = 1000


def decode_images(paths: list[str], show: Callable[[Path], str]) -> list[np.ndarray]:
    """Decode in file order: in forked worker processes when it pays and is safe, else here."""
    chunks = [paths[i:i + POOL_CHUNK] for i in range(0, len(paths), POOL_CHUNK)]
    workers = min(_cpus(), len(chunks))
    if len(paths) >= POOL_MIN_FILES and workers > 1 and can_fork():
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
        try:
            return [im for chunk in pool.map(_decode_chunk, chunks) for im in _checked(chunk, show)]
        except BrokenProcessPool:
            pass  # a worker died (out of memory?): decode here instead
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # on a bad file, stop at once
    return [im for chunk in chunks for im in _checked(_decode_chunk(chunk), show)]


def can_fork() -> bool:
    """Fork only a process without other threads: a forked copy of TensorFlow's may deadlock.

    Not spawn: it re-runs the caller's main script in each worker. The CLI loads the data
    before it imports TensorFlow, so it gets the workers; a process that already runs
    TensorFlow decodes in one process, about twice as slowly.
    """
    return ("fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1
            and not any(name in sys.modules for name in ("tensorflow", "torch", "jax")))


def _checked(chunk: list, show: Callable[[Path], str]) -> list[np.ndarray]:
    for item in chunk:
        if isinstance(item, tuple):
            path, reason = item
            raise DataError(f"'{show(Path(path))}' {reason}", hint="delete or replace the file; a class folder "
                                                       "may hold only PNG or JPEG images")
    return chunk


def _decode_chunk(paths: list[str]) -> list:
    """Decoded images, (H, W) for grayscale or (H, W, 3); a (path, reason) tuple stops the chunk."""
    out: list = []
    for path in paths:
        try:
            with Image.open(path, formats=FORMATS) as im:
                im.load()  # decode now: errors raised inside np.asarray would be muddled
                if im.mode not in ("L", "RGB"):
                    im = im.convert("L" if im.mode in GRAY_MODES else "RGB")
                out.append(np.asarray(im, dtype=np.uint8))
        except UnidentifiedImageError:
            out.append((path, "is not an image file (PNG or JPEG)"))
            break
        except Exception as e:  # PIL raises many kinds on a damaged file
            out.append((path, f"is a corrupt or truncated image ({one_line(e)})"))
            break
    return out


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
