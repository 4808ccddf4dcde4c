"""The `archdsl` command. Presenter only: each command calls the pipeline and prints.

Commands that need TensorFlow import it inside their handler, so `archdsl rf`,
`check` and `fmt` start in a fraction of a second.
Exit status: 0 ok, 1 a constraint failed (or a run failed), 2 the spec or command line is wrong.
The arguments each command takes, and their help, are parser.py's.
"""
from __future__ import annotations

import os
import shlex
import sys

from ..errors import ArchError, UsageError, did_you_mean
from .parser import build_parser


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
    """Parse + resolve + analyse; returns (model, analysis, the spec's text)."""
    from ..analysis import analyze
    from ..fileio import shown_path
    from ..language.parser import parse, read_source
    from ..language.resolve import resolve
    # the spec is named by its path with control characters escaped, in every message, warning and table
    spec = parse(read_source(path), shown_path(path))
    try:
        model = resolve(spec)
        return model, analyze(model), spec.text
    except ArchError as exc:  # the analysis' errors show their line from this text, not from a second read
        for e in getattr(exc, "errors", [exc]):
            e.source = spec.text if e.source is None else e.source
        raise


def cmd_rf(args) -> int:
    from ..analysis import check_assertions
    from ..render.tables import render
    model, analysis, text = _load(args.file)
    results = check_assertions(analysis)
    print(render(analysis, args.format, results, memory=args.memory))
    status = 0
    if args.verify:
        _start_tensorflow()
        from ..keras_backend.verify import verify_rf
        report = verify_rf(model, analysis)
        print(report.render())
        status = 0 if report.ok else 1
    for w in analysis.warnings:
        print(w.render(text), file=sys.stderr)
    return status if all(r.ok for r in results) else 1


def cmd_space(args) -> int:
    from .. import load_space
    from ..analysis.space import METRIC_COLUMNS, sort_key
    from ..render.space import render
    space = load_space(args.file)
    rows = space.feasible
    if args.sort:
        columns = [*METRIC_COLUMNS, *(c.name for c in space.choices)]
        if args.sort not in columns:
            raise UsageError(f"--sort {args.sort}: no such column", hint=did_you_mean(args.sort, columns)
                             or f"sort by one of: {', '.join(columns)}", code="E601")
        rows = sorted(rows, key=sort_key(args.sort), reverse=args.descending)
    if args.top is not None:
        rows = rows[:max(args.top, 0)]
    print(render(space, rows, args.format))
    if args.write and space.feasible:
        from .space_files import write_variants
        for path in write_variants(space, args.file, args.write):
            print(f"wrote {path}", file=sys.stderr)
    if not space.feasible:
        raise space.no_feasible_error()
    return 0


def cmd_check(args) -> int:
    from ..analysis import check_assertions, constraint_errors
    status = 0
    for path in args.files:
        try:
            try:
                model, analysis, text = _load(path)
            except ArchError as exc:
                if exc.code != "E285":
                    raise
                status = max(status, _check_space(path))  # a design space: every variant, as `archdsl space`
                continue
        except ArchError as exc:
            print(exc.render(), file=sys.stderr)
            status = max(status, exc.exit_status)
            continue
        failed = constraint_errors(check_assertions(analysis), source=text)
        for w in analysis.warnings:
            print(w.render(text), file=sys.stderr)
        for e in failed:
            print(e.render(), file=sys.stderr)
        if failed:
            status = max(status, 1)
        else:
            print(f"{model.file}: ok ({len(model.layers)} layers, {analysis.params:,} params, "
                  f"rf {analysis.final.rf[0]}x{analysis.final.rf[1]})")
    return status


def _check_space(path: str) -> int:
    from .. import load_space
    from ..render.space import counts_line
    space = load_space(path)
    if not space.feasible and space.variants:
        raise space.no_feasible_error()
    print(f"{space.spec.file}: ok (a design space: {counts_line(space)})")
    return 0


def cmd_fmt(args) -> int:
    """Each file in turn, like `check`: a bad one is reported and the others are still done; the worst status."""
    status = 0
    for path in args.files:
        try:
            status = max(status, _fmt_one(path, args))
        except ArchError as exc:
            print(exc.render(), file=sys.stderr)
            status = max(status, exc.exit_status)
    return status


def _fmt_one(path: str, args) -> int:
    from ..fileio import shown_path
    from ..language.formatter import format_spec
    from ..language.parser import BOM, parse, read_source
    from ..language.choices import resolve_first
    text = read_source(path, keep_bom=True)
    bom = BOM if text.startswith(BOM) else ""  # kept by --write, so the user's editor keeps its own
    shown = shown_path(path)
    spec = parse(text[len(bom):], shown)
    resolve_first(spec)  # only valid specs are formatted: fmt must not bless a broken file
    formatted = format_spec(spec)
    if args.check:
        if bom + formatted != text:
            print(f"{shown}: not formatted (run `archdsl fmt --write {shown}`)", file=sys.stderr)
            return 1
        return 0
    if args.write:
        if bom + formatted != text:
            from ..fileio import write_into
            write_into(path, (bom + formatted).encode("utf-8"))
        return 0
    sys.stdout.write(formatted)
    return 0


def _start_tensorflow() -> None:
    """Import TensorFlow before a command's modules do, so its start-up notice is printed once."""
    from ..keras_backend.tensorflow_start import import_tensorflow
    import_tensorflow()


def cmd_build(args) -> int:
    _start_tensorflow()
    from ..keras_backend.compile import compile as compile_keras
    model, analysis, _ = _load(args.file)
    keras_model = compile_keras(model)
    keras_model.summary()
    if args.output:
        from ..fileio import save_keras_model
        save_keras_model(keras_model, args.output)
        print(f"wrote {args.output}")
    return 0


def cmd_train(args) -> int:
    # oneDNN: 1.27x faster training measured on a 2-core AMD CPU, where TensorFlow leaves it off by
    # itself (docs/performance.md). Read when TensorFlow starts, so set before; the user's value wins.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    from ..training import progress
    from ..training.train import run_train  # which imports TensorFlow once the command line is checked
    shown = progress.VERBOSE
    progress.VERBOSE = args.verbose > 0  # `--verbose 0`: no progress of loading the data either
    try:
        return run_train(args)
    finally:  # for this command only (tests and programs call main() again)
        progress.VERBOSE = shown


def cmd_tune(args) -> int:
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as `train`: read when TensorFlow starts
    # which imports TensorFlow once the spec, its space, the tune folder and the study are checked
    from ..training.tune import run_tune
    return run_tune(args)


def cmd_eval(args) -> int:
    _start_tensorflow()
    from ..training.evaluate import run_eval
    return run_eval(args)


def cmd_draw(args) -> int:
    from ..render.draw import run_draw
    return run_draw(args)


def cmd_report(args) -> int:
    from ..render.report import run_report
    if not args.erf:
        return run_report(args)
    if args.run_dir is None:
        raise UsageError("--erf needs a RUN_DIR: it compares the trained model's field with the initial one",
                         hint="e.g. archdsl report specs/best.arch runs/best/<time> --erf -o report.html", code="E601")
    from pathlib import Path

    from ..fileio import check_target
    from ..render.report import report_format
    report_format(Path(args.output))
    check_target(args.output, overwrite=False)  # refuse before minutes of measuring
    _start_tensorflow()
    from ..analysis import analyze
    from ..language import load
    from ..training.effective_rf import report_section
    model = load(args.file)
    return run_report(args, erf=report_section(model, analyze(model), args.run_dir, args.data_dir))


def cmd_erf(args) -> int:
    _start_tensorflow()
    from ..training.effective_rf import run_erf
    return run_erf(args)


def cmd_export(args) -> int:
    if args.to in ("tflite", "onnx"):  # a converted model: TensorFlow and the data; Python source needs neither
        from ..training.deploy import check_deploy_export, run_deploy_export
        check_deploy_export(args)
        _start_tensorflow()
        return run_deploy_export(args)
    from ..render.export import run_export
    return run_export(args)


def cmd_lsp(args) -> int:
    try:  # the server's own dependencies are an optional extra: `archdsl rf` never needs them
        from ..lsp.server import main as serve
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("pygls", "lsprotocol"):
            raise
        raise UsageError(f"`archdsl lsp` needs pygls and lsprotocol ({exc})",
                         hint='pip install -e ".[lsp]" (or: pip install "pygls>=2.1,<3" "lsprotocol>=2025")',
                         code="E601") from None
    serve()
    return 0


HANDLERS = {"rf": cmd_rf, "space": cmd_space, "check": cmd_check, "fmt": cmd_fmt, "build": cmd_build,
            "train": cmd_train, "tune": cmd_tune, "eval": cmd_eval, "draw": cmd_draw, "report": cmd_report,
            "export": cmd_export, "erf": cmd_erf, "lsp": cmd_lsp}


def main_exit() -> None:
    """Console-script entry point."""
    sys.exit(main())
