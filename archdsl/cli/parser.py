"""The command line's arguments: one parser, each command's options with a line of help.

`build_parser()` is all `archdsl.cli` needs; `archdsl COMMAND --help` shows what it says here.
"""
from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import UsageError

EXAMPLES = """examples:
  archdsl rf specs/base.arch                 receptive-field table (no TensorFlow)
  archdsl rf specs/best.arch --format json   the same as JSON
  archdsl check specs/*.arch                 validate specs and their asserts
  archdsl space space.arch --sort params     a design space's feasible variants
  archdsl fmt specs/best.arch --write        rewrite in canonical form
  archdsl build specs/best.arch -o best.keras
  archdsl train specs/best.arch --data ../shared/data/cifar10-jpg.tar.gz --epochs 1 --limit 2000
  archdsl tune space.arch --trials 20 --epochs 5 --limit 5000
  archdsl eval runs/best/<timestamp>
  archdsl export runs/best/<timestamp> --to tflite --int8 -o best.tflite
"""


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (exit 2, our message shape) instead of printing usage and exiting."""

    def error(self, message):
        raise UsageError(message, hint=f"see `{self.prog} --help`", code="E601")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="archdsl", description="A declarative architecture language for CNNs.",
                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"archdsl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser,
                                help="one of these; `archdsl COMMAND --help` tells its arguments")

    p = _command(sub, "rf", "per-layer table: output size, receptive field, jump, start, params, MACs",
                 "A failed assert is shown as FAIL and makes the exit status 1; `archdsl check FILE...` is the "
                 "gate for many specs at once (exit 0 ok, 1 an assert failed, 2 a bad spec).")
    p.add_argument("file", metavar="FILE", help=SPEC)
    p.add_argument("--format", choices=["table", "json", "csv", "markdown"], default="table",
                   help="how to print the table (default: table)")
    p.add_argument("--verify", action="store_true",
                   help="build the Keras model and measure each layer's receptive field empirically")
    p.add_argument("--memory", action="store_true",
                   help="add activation memory (bytes of each layer's output, and of all alive while it runs, "
                        "at int8), the peak and the estimated flash (docs/deploy.md)")

    p = _command(sub, "space", "a design space's variants (its `choose` lines): each analysed, the feasible listed",
                 "Every combination of the choices is resolved and analysed without TensorFlow; those whose asserts "
                 "fail are counted by assert. Exit 0 when a variant is feasible, 1 when none is, 2 for a bad spec.")
    p.add_argument("file", metavar="FILE", help="the spec file (.arch) with `choose NAME in [...]` lines")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table",
                   help="how to print the variants (default: table)")
    p.add_argument("--sort", metavar="COLUMN",
                   help="order by params, macs, rf, ram, flash or a choice's name (default: as enumerated)")
    p.add_argument("--descending", action="store_true", help="largest first")
    p.add_argument("--top", type=int, metavar="N", help="list only the first N feasible variants")
    p.add_argument("--write", metavar="DIR",
                   help="write each feasible variant as a spec, DIR/<file>-<#>.arch (# as in the table); "
                        "existing files are never replaced")

    p = _command(sub, "check", "validate specs and their asserts; exit 0, 1 (assert failed) or 2 (bad spec)")
    p.add_argument("files", nargs="+", metavar="FILE", help="the spec files (.arch) to check")

    p = _command(sub, "fmt", "print specs in canonical form, or check or rewrite them")
    p.add_argument("files", nargs="+", metavar="FILE", help="the spec files (.arch) to format")
    p.add_argument("--check", action="store_true", help="exit 1 if a file is not formatted")
    p.add_argument("--write", action="store_true", help="rewrite the files in place")

    p = _command(sub, "build", "compile to Keras, print model.summary(), optionally save (.keras)")
    p.add_argument("file", metavar="FILE", help=SPEC)
    p.add_argument("-o", "--output", help="where to write the untrained model (Keras v3 .keras file)")

    p = _command(sub, "train", "compile to Keras and train; every epoch is checkpointed to runs/<spec>/<time>/")
    p.add_argument("file", nargs="?", metavar="FILE", help="the spec file (.arch); not needed with --resume")
    _add_data_arguments(p)
    p.set_defaults(data=None)  # cifar10, or with --resume the run's own data
    p.add_argument("--epochs", type=int, metavar="N", help="epochs to train (overrides the spec's `epochs`)")
    p.add_argument("--batch-size", type=int, metavar="N", help="images a step (overrides the spec's `batch`)")
    p.add_argument("--lr", type=float, help="learning rate (overrides the spec's `lr`)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override one setting of the spec's `train { }` section, written as there: --set lr=0.2, "
                        "--set \"schedule=inverse_time 0.3\", --set \"augment=flip crop 4\" (replaces the whole "
                        "augment), --set nesterov; repeatable, later ones win")
    p.add_argument("--recipe", metavar="FILE", help="a file holding only a `train { }` section: its settings "
                   "override the spec's; --set, then --epochs/--batch-size/--lr/--val-split override it")
    p.add_argument("--val-split", type=int, metavar="N",
                   help="hold out N training images (stratified by class, fixed by the seed) to validate on and "
                        "choose best.keras by; the test split is then scored once at the end (overrides the "
                        "spec's `val_split`). Without it: val (test split), the seed's protocol")
    p.add_argument("--limit", type=int, metavar="N", help="train on the first N training images")
    p.add_argument("--test-limit", type=int, metavar="N",
                   help="evaluate on the first N test images (default with --limit: the same share of the test "
                        "split as --limit is of the training split)")
    p.add_argument("--seed", type=int, metavar="N", help="seeds weights, shuffling, augmentation and dropout (default 0)")
    p.add_argument("--out", default="runs", metavar="DIR", help="parent folder of run directories (default: runs)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last complete epoch")
    # A progress bar rewrites one line, fine on a terminal, a flood of text in a log file (nohup).
    p.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1 if sys.stdout.isatty() else 2,
                   help="Keras progress output: 0 none, 1 a progress bar (default on a terminal), "
                        "2 a line an epoch (default otherwise)")
    p.add_argument("--strategy", help="auto (default), default, mirrored (this host's GPUs) or multiworker "
                                      "(the hosts of TF_CONFIG); see docs/distributed.md")
    p.add_argument("--precision", help="fp32 (default), mixed_bf16 or mixed_fp16 (the softmax stays float32)")
    p.add_argument("--scale-lr", action="store_true",
                   help="multiply the learning rate by the number of replicas (the batch is per replica)")
    p.add_argument("--batchnorm", choices=["fused", "keras"],
                   help="batch norm as TensorFlow's fused kernel (default for a new run: faster, same function) "
                        "or Keras' own layer; a resumed run keeps its own")
    p.add_argument("--peer-timeout", type=float, metavar="SECONDS",
                   help="multiworker: give up when the other workers are not all up within this time (default 300)")
    p.add_argument("--final-weights", help=argparse.SUPPRESS)  # tests: every worker saves its final weights (.npz)

    p = _command(sub, "tune", "tune a design space with Optuna: each trial trains a feasible variant as a run",
                 "Each choice is a parameter of an Optuna study (TPE by default); a trial trains its variant with "
                 "--epochs on the held-out split into <out>/<study>/trials/<number>/, reporting each epoch's held-out "
                 "accuracy to the pruner; combinations whose asserts fail are never trained. Workers that open the "
                 "same study share it (docs/tuning.md). Exit 0 done, 1 no feasible variant, 2 a bad spec or command "
                 "line, 130 interrupted (--resume continues).")
    p.add_argument("file", metavar="FILE", help="the spec file (.arch), usually with `choose NAME in [...]` lines")
    _add_data_arguments(p)
    p.add_argument("--out", metavar="DIR", help="parent of the tune folder <out>/<study>/ (default: runs/tune)")
    p.add_argument("--study", metavar="NAME", help="the study's name, and its folder's (default: FILE's stem)")
    p.add_argument("--storage", metavar="URL",
                   help="where the study is kept (default: a SQLite file in the tune folder, for one machine); "
                        "postgresql://USER:PASSWORD@HOST:PORT/DB shares it between machines")
    p.add_argument("--trials", type=int, metavar="N",
                   help="stop once the study has N trained, finished trials, counting every worker's (default: "
                        "when every feasible variant has one, or at --time)")
    p.add_argument("--time", type=float, metavar="SECONDS",
                   help="start no trial after SECONDS (the one running finishes)")
    p.add_argument("--epochs", type=int, metavar="N", help="epochs a trial trains (default: the spec's `epochs`)")
    p.add_argument("--limit", type=int, metavar="N", help="train on the first N training images")
    p.add_argument("--test-limit", type=int, metavar="N",
                   help="score each trial once on the first N test images (default with --limit: the matching share)")
    p.add_argument("--val-split", type=int, metavar="N",
                   help="hold out N training images to validate on; their accuracy is what is tuned (default: the "
                        "spec's `val_split`, else a tenth of the training images used)")
    p.add_argument("--seed", type=int, metavar="N",
                   help="seeds every trial's training, and the first worker's sampler (default 0)")
    p.add_argument("--sampler", choices=["tpe", "random", "grid"],
                   help="how variants are proposed: tpe (default), random, or grid (each combination once)")
    p.add_argument("--pruner", choices=["median", "hyperband", "none"],
                   help="when a trial is stopped early on its held-out accuracy (default: median)")
    p.add_argument("--resume", action="store_true",
                   help="continue a study that has finished trials: they are not repeated; a trial cut off is "
                        "trained again, from its last checkpoint")
    p.add_argument("--leaderboard", action="store_true", help="print the study's leaderboard and exit (no training)")
    p.add_argument("--format", choices=["table", "json"], default="table", help="the leaderboard's (default: table)")
    p.add_argument("--report", metavar="FILE.html",
                   help="also write a page with the leaderboard and params against held-out accuracy (an existing "
                        "file is not overwritten)")
    p.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1,
                   help="0 only the leaderboard, 1 a line a trial (default), 2 also a line an epoch")
    p.add_argument("--heartbeat-grace", type=int, help=argparse.SUPPRESS)  # tests: a dead worker's trial fails sooner

    p = _command(sub, "eval", "test accuracy, per-class accuracy and confusion matrix of a run or model")
    p.add_argument("target", metavar="RUN_DIR|MODEL",
                   help="a training run's folder (runs/<spec>/<time>) or a saved MODEL (.keras, or a .tflite or "
                        ".onnx file of `archdsl export`)")
    _add_data_arguments(p)
    p.set_defaults(data=None)  # a run's own data, else cifar10
    p.add_argument("--test-limit", type=int, metavar="N", help="evaluate on the first N test images")
    p.add_argument("--tta", action="store_true", help="average predictions over the image and its mirror")

    p = _command(sub, "draw", "draw the network (graphviz: svg, png, pdf, dot; or ascii in the terminal)")
    p.add_argument("file", metavar="FILE", help=SPEC)
    p.add_argument("-o", "--output", help="output file; its extension picks the format (.svg .png .pdf .dot .gv, "
                                          ".txt for ascii); without -o the drawing is printed (ascii by default)")
    p.add_argument("--format", choices=["svg", "png", "pdf", "dot", "ascii"],
                   help="override the format (without -o: ascii, svg or dot print to the terminal)")
    p.add_argument("--rankdir", choices=["TB", "LR"], default="TB", help="top-to-bottom or left-to-right")

    p = _command(sub, "report", "an HTML or Markdown report: RF table, diagram, params, asserts, training")
    p.add_argument("file", metavar="FILE", help=SPEC)
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a training run to add curves and metrics from")
    p.add_argument("-o", "--output", required=True, help="report.html or report.md")
    p.add_argument("--erf", action="store_true",
                   help="with RUN_DIR: add the deepest spatial layer's effective receptive field, at initialisation "
                        "and trained, on the run's own test images (needs TensorFlow; docs/erf.md)")
    p.add_argument("--data-dir", metavar="DIR", help="with --erf: cache folder for the run's data "
                                                      "(default: $ARCHDSL_DATA or ~/.cache/archdsl)")

    p = _command(sub, "export", "a readable standalone Python file that builds the model, or a deployable model "
                                "(.tflite, .onnx)",
                 "--to keras|pytorch writes Python source from a spec FILE; --to tflite|onnx converts a spec FILE "
                 "(untrained) or a run's best.keras (RUN_DIR) to a file that reads raw pixels 0..255, the "
                 "normaliser included (docs/deploy.md). An existing output file is never overwritten.")
    p.add_argument("file", metavar="FILE", help="the spec file (.arch); for tflite and onnx also a training run's "
                                                "folder, RUN_DIR (runs/<spec>/<time>): its best.keras")
    p.add_argument("--to", required=True, metavar="keras|pytorch|tflite|onnx",
                   help="the framework the generated file builds the model with (keras, pytorch), or the "
                        "deployable format (tflite: batch 1; onnx: opset 17, batch open)")
    p.add_argument("-o", "--output", required=True, help="the file to write: .py, .tflite or .onnx")
    p.add_argument("--data", metavar="cifar10|PATH",
                   help="tflite, onnx: the training data, for --int8's calibration and a spec's `normalize standard` "
                        "(default: a run's own data; a spec without it: no calibration, docs/deploy.md)")
    p.add_argument("--data-dir", metavar="DIR", help="cache folder for datasets (default: $ARCHDSL_DATA or ~/.cache/archdsl)")
    p.add_argument("--int8", action="store_true",
                   help="tflite: full-integer post-training quantization (every op int8), calibrated on the first "
                        "--calibration training images of --data (a run: its own data by default); the file "
                        "written is held to the spec's `assert flash` lines, with a warning for each it breaks")
    p.add_argument("--int8-io", action="store_true",
                   help="tflite --int8: the input and output int8 too (raw pixels quantized as the file declares); "
                        "default: float32 input and output around the int8 model")
    p.add_argument("--calibration", type=int, default=200, metavar="N",
                   help="--int8: calibrate on the first N training images (default 200)")
    p.add_argument("--last", action="store_true", help="RUN_DIR: convert its last.keras, not best.keras")
    p.add_argument("--verbose", action="store_true", help="tflite, onnx: show the converter's own output")

    p = _command(sub, "erf", "effective receptive fields: how strongly each input pixel moves a layer's centre unit",
                 "Without a run or model: the spec at initialisation (the mean of 4 seeds). Images: the first N "
                 "of the test split (--data, or the run's own), or standard normal noise for a spec alone. "
                 "See docs/erf.md for the statistics.")
    p.add_argument("file", metavar="FILE", help=SPEC)
    p.add_argument("target", nargs="?", metavar="RUN_DIR|MODEL",
                   help="a training run's folder (its best.keras) or a saved MODEL (.keras) of this spec")
    _add_data_arguments(p)
    p.add_argument("--images", type=int, default=64, metavar="N", help="images to average over (default 64)")
    p.add_argument("--layers", metavar="3,7,11|all",
                   help="IR indices of spatial layers (the table's # column); default: all of them")
    p.add_argument("--twin", action="store_true",
                   help="the linear, positive twin of `rf --verify` (every tap 1/(kh*kw)): a closed form")
    p.add_argument("--format", choices=["table", "json"], default="table", help="how to print (default: table)")
    p.add_argument("-o", "--output", help="also draw the maps: .html (every layer, beside the table), "
                                          ".png (every layer, side by side) or .svg (the deepest chosen layer)")

    _command(sub, "lsp", "a language server for editors (LSP over stdio: diagnostics, hover, inlay hints, "
                         "completion, formatting)", "Started by the editor, not by hand; see docs/editors.md.")
    return parser


SPEC = "the spec file (.arch)"


def _command(sub, name: str, summary: str, more: str = "") -> argparse.ArgumentParser:
    """A command: `summary` is its line in `archdsl --help` and the first line of `archdsl NAME --help`."""
    return sub.add_parser(name, help=summary, description=f"{summary[0].upper()}{summary[1:]}.{' ' + more if more else ''}")


def _add_data_arguments(p):
    p.add_argument("--data", metavar="cifar10|PATH", help="cifar10 (downloaded once) or PATH to an image folder/.tar.gz "
                                  "(default: a resumed or evaluated run's own data, else cifar10)")
    p.add_argument("--data-dir", metavar="DIR", help="cache folder for datasets (default: $ARCHDSL_DATA or ~/.cache/archdsl)")
