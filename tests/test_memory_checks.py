"""Models and measurements too large for the machine are refused from the IR, before TensorFlow allocates.

The estimates are checked by hand here (weights x 8 bytes; 16 bytes x canvas pixels x layers), and the
commands are run in a child process under an address-space limit, so a regression (TensorFlow trying
to allocate) fails instead of swapping.
"""
from __future__ import annotations

import resource
import subprocess
import sys

import pytest

import archdsl
from archdsl.errors import ArchError
from archdsl.keras_backend.memory import check_build, check_measurement

HUGE = "model huge\ninput 64x64x3\nconv 3x3 100000 same\nconv 3x3 100000 same\ngap\n"


def test_build_estimate_by_hand():
    model = archdsl.loads("input 8x8x3\nconv 3x3 10 same\ngap\ndense 5\n")
    # weights: 3*3*3*10 = 270, 10*5 + 5 = 55; 325 weights x 8 bytes = 2,600 bytes
    check_build(model, limit=2_600)
    with pytest.raises(ArchError) as caught:
        check_build(model, limit=2_599)
    error = caught.value
    assert error.code == "E236" and error.span.line == 2  # the conv, the layer with the most weights
    assert "325 weights" in error.message and "layer 1 alone has 270" in error.message


def test_measurement_estimate_by_hand():
    model = archdsl.loads("input 10x12x1\nconv 3x3 2 same bn relu\n")
    # 3 Keras layers (the conv, its bn and relu) on a 10x12 canvas: 16 * 120 * 3 = 5,760 bytes
    check_measurement(model, (10, 12), 3, limit=5_760)
    with pytest.raises(ArchError, match="3 layers on a 10x12 canvas"):
        check_measurement(model, (10, 12), 3, limit=5_759)


def _run_limited(argv: list[str], tmp_path, gigabytes: int = 6) -> subprocess.CompletedProcess:
    limit = gigabytes * 2**30
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (%d, %d)); "
            "from archdsl.cli import main_exit; sys.argv = ['archdsl'] + %r; main_exit()" % (limit, limit, argv))
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)


@pytest.mark.tf
def test_build_of_a_model_no_machine_holds_is_refused(tmp_path):
    (tmp_path / "huge.arch").write_text(HUGE)
    proc = _run_limited(["build", "huge.arch"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    # layer 2 (line 4) has 3*3*100,000*100,000 weights, layer 1 only 3*3*3*100,000
    assert "huge.arch:4:1: error[E236]: building the model would allocate about 670.6 GiB" in proc.stderr
    assert "  4 | conv 3x3 100000 same\n    | ^^^^\n" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.tf
def test_verify_of_a_huge_input_is_refused(tmp_path):
    (tmp_path / "wide.arch").write_text("input 100000x100000x1\nconv 3x3 2 same\n")
    proc = _run_limited(["rf", "wide.arch", "--verify"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "wide.arch:2:1: error[E236]: rf --verify would measure 1 layer on a 100,002x100,002 canvas" in proc.stderr
    assert "Traceback" not in proc.stderr
