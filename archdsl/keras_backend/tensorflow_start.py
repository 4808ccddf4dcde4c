"""Import TensorFlow once, without its start-up notice twice.

TensorFlow's import loads two native libraries and each prints the same oneDNN notice through
absl, before absl's logging is set up (so TF_CPP_MIN_LOG_LEVEL does not hide it), each with a
"WARNING: All log messages before absl::InitializeLog()..." preamble. The command line imports
TensorFlow through `import_tensorflow()`, which catches what the import writes to the native
stderr and passes it on with the notice once and without the preambles; anything else
(a real warning, an error) is passed on unchanged.
"""
from __future__ import annotations

import os
import sys
import tempfile

ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
NOTICE = "oneDNN custom operations are"
MAX_KEPT = 1 << 20  # what an import may print that is passed on (it is a few hundred bytes)


def import_tensorflow() -> None:
    """Import TensorFlow (a no-op when it is imported already), its start-up notice said once."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's other start-up chatter, as compile.py
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no native stderr to redirect (an embedded interpreter): import as is
        import tensorflow  # noqa: F401
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            # back where TensorFlow wrote it (the native stderr), so whoever reads Python's sys.stderr sees
            # what it saw before
            os.write(2, without_repeats(caught.read(MAX_KEPT).decode("utf-8", "replace")).encode("utf-8"))


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
