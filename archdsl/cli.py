"""The `archdsl` command. Presenter only: each command calls the pipeline and prints.

Commands that need TensorFlow import it inside their handler, so `archdsl rf`,
`check` and `fmt` start in a fraction of a second.
Exit status: 0 ok, 1 a constraint failed (or a run failed), 2 the spec or command line is wrong.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys

from . import __version__
from .errors import ArchError, UsageError, did_you_mean

EXAMPLES = """examples:
  archdsl rf specs/base.arch                 receptive-field table (no TensorFlow)
  archdsl rf specs/best.arch --format json   the same as JSON
  archdsl check specs/*.arch                 validate specs and their asserts
  archdsl fmt specs/best.arch --write        rewrite in canonical form
  archdsl build specs/best.arch -o best.keras
  archdsl train specs/best.arch --data ../shared/data/cifar10-jpg.tar.gz --epochs 1 --limit 2000
  archdsl eval runs/best/<timestamp>
"""


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (exit 2, our message shape) instead of printing usage and exiting."""

    def error(self, message):
        raise UsageError(message, hint=f"see `{self.prog} --help`", code="E601")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="archdsl", description="A declarative architecture language for CNNs.",
                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"archdsl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("rf", help="per-layer table: output size, receptive field, jump, start, params, MACs")
    p.add_argument("file")
    p.add_argument("--format", choices=["table", "json", "csv", "markdown"], default="table")
    p.add_argument("--verify", action="store_true",
                   help="build the Keras model and measure each layer's receptive field empirically")

    p = sub.add_parser("check", help="validate specs and their asserts; exit 0, 1 (assert failed) or 2 (bad spec)")
    p.add_argument("files", nargs="+", metavar="FILE")

    p = sub.add_parser("fmt", help="print a spec in canonical form")
    p.add_argument("file")
    p.add_argument("--check", action="store_true", help="exit 1 if the file is not formatted")
    p.add_argument("--write", action="store_true", help="rewrite the file in place")

    p = sub.add_parser("build", help="compile to Keras, print model.summary(), optionally save (.keras)")
    p.add_argument("file")
    p.add_argument("-o", "--output", help="where to write the untrained model (Keras v3 .keras file)")

    p = sub.add_parser("train", help="compile to Keras and train")
    p.add_argument("file", nargs="?", help="the spec (not needed with --resume)")
    _add_data_arguments(p)
    p.set_defaults(data=None)  # cifar10, or with --resume the run's own data
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--limit", type=int, help="train on the first N training images")
    p.add_argument("--test-limit", type=int, help="evaluate on the first N test images")
    p.add_argument("--seed", type=int, help="seeds weights, shuffling, augmentation and dropout (default 0)")
    p.add_argument("--out", default="runs", help="parent folder of run directories (default: runs)")
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

    p = sub.add_parser("eval", help="test accuracy, per-class accuracy and confusion matrix of a run or model")
    p.add_argument("target", metavar="MODEL_OR_RUN_DIR")
    _add_data_arguments(p)
    p.set_defaults(data=None)  # a run's own data, else cifar10
    p.add_argument("--test-limit", type=int)
    p.add_argument("--tta", action="store_true", help="average predictions over the image and its mirror")

    p = sub.add_parser("draw", help="draw the network (graphviz: svg, png, pdf, dot; or ascii in the terminal)")
    p.add_argument("file")
    p.add_argument("-o", "--output", help="output file; its extension picks the format (.svg .png .pdf .dot)")
    p.add_argument("--format", choices=["svg", "png", "pdf", "dot", "ascii"],
                   help="override the format (ascii prints to the terminal)")
    p.add_argument("--rankdir", choices=["TB", "LR"], default="TB", help="top-to-bottom or left-to-right")

    p = sub.add_parser("report", help="an HTML or Markdown report: RF table, diagram, params, asserts, training")
    p.add_argument("file")
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a training run to add curves and metrics from")
    p.add_argument("-o", "--output", required=True, help="report.html or report.md")

    p = sub.add_parser("export", help="generate a readable standalone Python file that builds the model")
    p.add_argument("file")
    p.add_argument("--to", required=True, help="keras or pytorch")
    p.add_argument("-o", "--output", required=True, help="the .py file to write")
    return parser


def _add_data_arguments(p):
    p.add_argument("--data", help="cifar10 (downloaded once) or PATH to an image folder/.tar.gz "
                                  "(default: a resumed or evaluated run's own data, else cifar10)")
    p.add_argument("--data-dir", help="cache folder for datasets (default: $ARCHDSL_DATA or ~/.cache/archdsl)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _escape_what_the_terminal_cannot_show()
    parser = build_parser()
    try:
        if argv and not argv[0].startswith("-") and argv[0] not in HANDLERS:
            guess = did_you_mean(argv[0], HANDLERS)
            commands = "commands: " + ", ".join(HANDLERS)
            raise UsageError(f"unknown command '{argv[0]}'", hint=f"{guess} ({commands})" if guess else commands,
                             code="E601")
        args, extra = parser.parse_known_args(argv)
        if extra:  # name the command whose options these are not
            where = f"archdsl {args.command}" if args.command else "archdsl"
            raise UsageError(f"unknown argument{'s' if len(extra) > 1 else ''} for `{where}`: {' '.join(extra)}",
                             hint=f"see `{where} --help`", code="E601")
        if not args.command:
            parser.print_help()
            return 2
        args.command_line = shlex.join(["archdsl", *map(str, argv)])  # kept in a run's metrics.json
        return HANDLERS[args.command](args)
    except ArchError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _escape_what_the_terminal_cannot_show() -> None:
    """A file or model name the terminal's encoding lacks (`模型.arch` under an ASCII locale) is printed as
    `\u6a21...`, not raised as UnicodeEncodeError half-way through a table."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure") and getattr(stream, "errors", None) == "strict":
            stream.reconfigure(errors="backslashreplace")


def _load(path: str):
    """Parse + resolve + analyse; returns (model, analysis)."""
    from .analysis import analyze
    from .language.parser import parse_file
    from .language.resolve import resolve
    model = resolve(parse_file(path))
    return model, analyze(model)


def cmd_rf(args) -> int:
    from .analysis import check_assertions
    from .render.tables import render
    model, analysis = _load(args.file)
    results = check_assertions(analysis)
    print(render(analysis, args.format, results))
    status = 0
    if args.verify:
        from .keras_backend.verify import verify_rf
        report = verify_rf(model, analysis)
        print(report.render())
        status = 0 if report.ok else 1
    for w in analysis.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return status if all(r.ok for r in results) else 1


def cmd_check(args) -> int:
    from .analysis import check_assertions, constraint_errors
    status = 0
    for path in args.files:
        try:
            model, analysis = _load(path)
        except ArchError as exc:
            print(exc.render(), file=sys.stderr)
            status = max(status, exc.exit_status)
            continue
        failed = constraint_errors(check_assertions(analysis), source=_read_text(path))
        for w in analysis.warnings:
            print(f"warning: {w}", file=sys.stderr)
        for e in failed:
            print(e.render(), file=sys.stderr)
        if failed:
            status = max(status, 1)
        else:
            print(f"{path}: ok ({len(model.layers)} layers, {analysis.params:,} params, "
                  f"rf {analysis.final.rf[0]}x{analysis.final.rf[1]})")
    return status


def cmd_fmt(args) -> int:
    from .language.formatter import format_spec
    from .language.parser import BOM, parse, read_source
    from .language.resolve import resolve
    text = read_source(args.file, keep_bom=True)
    bom = BOM if text.startswith(BOM) else ""  # kept by --write, so the user's editor keeps its own
    spec = parse(text[len(bom):], args.file)
    resolve(spec)  # only valid specs are formatted: fmt must not bless a broken file
    formatted = format_spec(spec)
    if args.check:
        if bom + formatted != text:
            print(f"{args.file}: not formatted (run `archdsl fmt --write {args.file}`)", file=sys.stderr)
            return 1
        return 0
    if args.write:
        if bom + formatted != text:
            from .fileio import write_into
            write_into(args.file, (bom + formatted).encode("utf-8"))
        return 0
    sys.stdout.write(formatted)
    return 0


def cmd_build(args) -> int:
    from .keras_backend.compile import compile as compile_keras
    model, analysis = _load(args.file)
    keras_model = compile_keras(model)
    keras_model.summary()
    if args.output:
        from .fileio import save_keras_model
        save_keras_model(keras_model, args.output)
        print(f"wrote {args.output}")
    return 0


def cmd_train(args) -> int:
    # oneDNN: 1.27x faster training measured on a 2-core AMD CPU, where TensorFlow leaves it off by
    # itself (docs/performance.md). Read when TensorFlow starts, so set before; the user's value wins.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    from .training.train import run_train
    return run_train(args)


def cmd_eval(args) -> int:
    from .training.evaluate import run_eval
    return run_eval(args)


def cmd_draw(args) -> int:
    from .render.draw import run_draw
    return run_draw(args)


def cmd_report(args) -> int:
    from .render.report import run_report
    return run_report(args)


def cmd_export(args) -> int:
    from .render.export import run_export
    return run_export(args)


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


HANDLERS = {"rf": cmd_rf, "check": cmd_check, "fmt": cmd_fmt, "build": cmd_build,
            "train": cmd_train, "eval": cmd_eval, "draw": cmd_draw, "report": cmd_report, "export": cmd_export}


def main_exit() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    main_exit()
