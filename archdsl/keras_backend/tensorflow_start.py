"""TensorFlow's native output: its start-up notice said once, and the converters' chatter caught.

TensorFlow's import loads two native libraries and each prints the same oneDNN notice through
absl, before absl's logging is set up (so TF_CPP_MIN_LOG_LEVEL does not hide it), each with a
"WARNING: All log messages before absl::InitializeLog()..." preamble. The command line imports
TensorFlow through `import_tensorflow()`, which catches what the import writes to the native
stderr and passes it on with the notice once and without the preambles; anything else
(a real warning, an error) is passed on unchanged.

`captured_output()` is the catching itself: what native code writes to fd 1 and 2 within a block
(the TFLite and ONNX converters write there), kept for a failure's message, or passed on.
"""
from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager

ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
NOTICE = "oneDNN custom operations are"
MAX_KEPT = 1 << 20  # what a block may print that is kept (an import prints a few hundred bytes)


class Captured:
    text = ""


@contextmanager
def captured_output(verbose: bool = False, fds: tuple[int, ...] = (1, 2)):
    """Catch what is written to the native `fds` (stdout and stderr) within the block.

    Yields a `Captured` whose `text` holds it after the block; with `verbose` it is also passed on (to the
    native stderr, where it was written)."""
    captured = Captured()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        saved = [os.dup(fd) for fd in fds]
    except OSError:  # no native streams to redirect (an embedded interpreter)
        yield captured
        return
    with tempfile.TemporaryFile() as sink:
        for fd in fds:
            os.dup2(sink.fileno(), fd)
        try:
            yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in zip(fds, saved):
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            captured.text = sink.read(MAX_KEPT).decode("utf-8", "replace")
            if verbose:
                os.write(2, captured.text.encode("utf-8"))


def import_tensorflow() -> None:
    """Import TensorFlow (a no-op when it is imported already), its start-up notice said once."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's other start-up chatter, as compile.py
    caught = None
    try:
        with captured_output(fds=(2,)) as caught:
            import tensorflow  # noqa: F401
    finally:
        if caught is not None:  # back where TensorFlow wrote it, so whoever reads sys.stderr sees what it saw before
            os.write(2, without_repeats(caught.text).encode("utf-8"))


def without_repeats(text: str) -> str:
    """`text` without absl's preamble lines and with the oneDNN notice once."""
    kept, noticed = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith(ABSL_PREAMBLE):
            continue
        if NOTICE in line:
            if noticed:
                continue
            noticed = True
        kept.append(line)
    return "".join(kept)
