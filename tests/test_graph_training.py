"""Graph examples (residual, inverted residual, Inception-style concat) train for an epoch."""
import csv

import pytest

from archdsl.cli import main

GRAPH_EXAMPLES = ["examples/resnet8.arch", "examples/mobilenetv2_cifar.arch", "examples/inception_cifar.arch"]


@pytest.mark.tf
@pytest.mark.parametrize("spec", GRAPH_EXAMPLES)
def test_graph_example_trains_one_epoch(spec, cifar_archive, data_cache, tmp_path):
    status = main(["train", spec, "--data", str(cifar_archive), "--data-dir", str(data_cache), "--epochs", "1",
                   "--limit", "64", "--test-limit", "32", "--batch-size", "32", "--out", str(tmp_path),
                   "--verbose", "0"])
    assert status == 0
    (run,) = [p for p in tmp_path.glob("*/*") if p.is_dir()]
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1"]
    assert float(rows[0]["loss"]) > 0 and 0 <= float(rows[0]["val_accuracy"]) <= 1
    assert (run / "best.keras").is_file() and (run / "last.keras").is_file()
