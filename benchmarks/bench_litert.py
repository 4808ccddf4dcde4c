"""LiteRT CPU latency per image of a spec's float32 and int8 .tflite (batch 1), untrained weights.

    python benchmarks/bench_litert.py [specs/best.arch] [--runs 500] [--threads 1]

The int8 model is calibrated on random images (latency does not depend on the weights' values).
Prints the median and the 10th/90th percentiles of single invocations, after 50 warm-up runs;
docs/deploy.md keeps the results with the machine they were measured on.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def latency(tflite: bytes, runs: int, threads: int) -> tuple[float, float, float]:
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_content=tflite, num_threads=threads)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    info = np.iinfo(inp["dtype"]) if np.issubdtype(inp["dtype"], np.integer) else None
    x = (np.random.default_rng(0).integers(info.min, info.max + 1, inp["shape"]).astype(inp["dtype"]) if info
         else np.random.default_rng(0).uniform(0, 255, inp["shape"]).astype(np.float32))
    for _ in range(50):
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    p10, p50, p90 = np.percentile(np.array(times) * 1e3, [10, 50, 90])
    return p50, p10, p90


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default="specs/best.arch")
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from archdsl.keras_backend.tensorflow_start import import_tensorflow
    import_tensorflow()
    import archdsl
    from archdsl.keras_backend.compile import compile as compile_keras
    from archdsl.keras_backend.convert import representative_images, to_tflite
    from archdsl.training.pipeline import normalizer

    model = archdsl.load(args.spec)
    kmodel = compile_keras(model, preprocess=normalizer("scale", None))
    images = np.random.default_rng(0).integers(0, 256, (100, *model.input_shape), dtype=np.uint8)
    for name, tflite in (("float32", to_tflite(kmodel)),
                         ("int8", to_tflite(kmodel, representative_images(images), int8_io=True))):
        p50, p10, p90 = latency(tflite, args.runs, args.threads)
        print(f"{args.spec} {name:>7}: {p50:6.2f} ms an image (p10 {p10:.2f}, p90 {p90:.2f}; "
              f"{len(tflite):,} bytes; {args.threads} thread{'s' if args.threads > 1 else ''})")


if __name__ == "__main__":
    main()
