"""TensorFlow's start-up notice is said once by the commands that import it (issue 28, 7c).

TensorFlow loads two native libraries and each prints the oneDNN notice, with absl's preamble
before it; `keras_backend.tensorflow_start` passes on what the import prints, the notice once.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from archdsl.keras_backend.tensorflow_start import ABSL_PREAMBLE, without_repeats

ROOT = Path(__file__).resolve().parents[1]

# What `python -c "import tensorflow"` printed on the Xeon machine of session 17 (copied from its stderr).
NOTICE = ("I0000 00:00:1796416216.830301    9992 port.cc:153] oneDNN custom operations are on. You may see "
          "slightly different numerical results due to floating-point round-off errors from different "
          "computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n")
PREAMBLE = ABSL_PREAMBLE + "\n"


def test_the_notice_is_kept_once_and_the_preambles_go():
    other = "W0000 something else TensorFlow warns about\n"
    assert without_repeats(PREAMBLE + NOTICE + PREAMBLE + NOTICE.replace("9992", "9993") + other) == NOTICE + other


def test_text_without_the_notice_is_passed_on_unchanged():
    text = "Traceback (most recent call last):\nImportError: libfoo.so\n"
    assert without_repeats(text) == text


def test_archdsl_build_prints_tensorflows_notice_at_most_once():
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    env["TF_ENABLE_ONEDNN_OPTS"] = "1"  # the notice is printed only when oneDNN is on
    done = subprocess.run([sys.executable, "-m", "archdsl", "build", "specs/base.arch"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("oneDNN custom operations") <= 1, done.stderr
    assert ABSL_PREAMBLE not in done.stderr
    assert 'Model: "base"' in done.stdout
