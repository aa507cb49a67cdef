"""`python -m evaluation score --ref REF --pred PRED [--json R] [--per-item I] [--task auto|mc|qa] [--weights W]`;
`python -m evaluation run --model M [--adapter A ...] --data D ... --out DIR` (see evaluation/run_cli.py)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import safeio
from safeio import ExitStatus
from evaluation.data import DataFileError
from evaluation.run_cli import add_run_parser, run_command
from evaluation.predict_cli import add_predict_parser, predict_command
from evaluation.check_cli import add_check_parser, check_command
from evaluation.report import print_file_error, render_text, write_json, write_per_item
from evaluation.submission import (
    DEFAULT_MAX_ANSWER_CHARS, EXIT_PREDICTIONS_MALFORMED, EXIT_REFERENCE_MALFORMED, WeightsError,
    score_submission,
)
from evaluation.tasks import TASKS

EPILOG = """exit status:
  0  scored; the predictions file is valid (warnings such as empty answers may be listed)
  2  wrong command-line usage
  3  the reference file is malformed (nothing scored)
  4  the predictions file is malformed (broken lines, missing or wrong fields; the rest is scored)
  5  the predictions do not match the reference (missing, unknown or duplicate ids, lines out of order)
  6  --extractor: the judge model cannot be used
  1  an unexpected internal error (a bug: please report it; MEDTUNE_DEBUG=1 shows the traceback)
Files are read within limits (--max-rows, --max-field-length, ...); a file over one is malformed (3 or 4), and the
message names the file, line, field and the flag that raises the limit. Ids and answers are printed with control
characters escaped.
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evaluation", description="Score and check medical model output")
    commands = parser.add_subparsers(dest="command", required=True)
    score = commands.add_parser("score", help="check and score a predictions file against a reference file",
                                epilog=EPILOG, formatter_class=safeio.HelpFormatter)
    score.add_argument("--ref", required=True, help="reference file (JSONL, JSON array or CSV)")
    score.add_argument("--pred", required=True, help="predictions file: one {\"id\"?, \"output\"} per reference item")
    score.add_argument("--task", choices=["auto", *TASKS], default="auto",
                       help="; ".join(f"{t.title} ({t.name})" for t in TASKS.values())
                       + "; detected from the reference by default")
    score.add_argument("--weights", help="combined score, e.g. 'rouge-l=0.5,bleu-4=0.5' (default: "
                                         + ", ".join(f"{t.main_metric} for {t.name}" for t in TASKS.values()) + ")")
    score.add_argument("--max-answer-chars", type=_positive_int, default=DEFAULT_MAX_ANSWER_CHARS, metavar="N",
                       help="cut answers longer than N characters before extraction and ROUGE/BLEU, with a warning "
                            f"on their line (default {DEFAULT_MAX_ANSWER_CHARS:,})")
    score.add_argument("--what-if", action="store_true",
                       help="free-form: a table of ROUGE/BLEU with each post-processing option off and on (the "
                            "--postprocess options, or all of them with lengths learnt from the reference)")
    score.add_argument("--postprocess", action="append", default=[], metavar="NAME",
                       help="free-form: post-process the answers before scoring (strip_markdown, strip_question, "
                            "collapse_whitespace, cut=N, fit=N, stopwords=FILE; repeatable, in order)")
    score.add_argument("--extractor", metavar="MODEL",
                       help="multiple choice: a model (hub id, local directory or 'demo') that decides the answers "
                            "the rule-based extraction cannot read; named in the report (default: rules only)")
    score.add_argument("--json", dest="json_out", help="write the report as JSON to this file")
    score.add_argument("--per-item", help="write one scored row per reference item to this JSONL file")
    safeio.add_arguments(score)
    add_run_parser(commands)
    add_predict_parser(commands)
    add_check_parser(commands)
    for sub in commands.choices.values():  # every subcommand's --help shows each flag's default
        sub.formatter_class = safeio.HelpFormatter
    return parser


def score_command(args: argparse.Namespace) -> int:
    from evaluation.check import is_unlabelled

    if is_unlabelled(args.ref):  # a test file: nothing to score against, but the submission can be checked
        print("The reference has no answers (a test file): checking the submission against it, not scoring.")
        return check_command(args, args.ref, args.pred)
    if args.what_if:
        return what_if_command(args)
    try:
        report = score_submission(args.ref, args.pred, args.task, args.weights, args.max_answer_chars,
                                  postprocess=tuple(args.postprocess))
    except DataFileError as err:  # the reference's or the predictions' (ReferenceMalformed is one)
        return print_file_error(err, EXIT_REFERENCE_MALFORMED, EXIT_PREDICTIONS_MALFORMED)
    if args.extractor:
        judged = _judge(report, args.extractor)
        if judged is None:
            return ExitStatus.MODEL_UNUSABLE
    print(safeio.printable(render_text(report)))  # ids and answers are the user's: no raw escape codes
    for option, path, write in (("--json", args.json_out, write_json), ("--per-item", args.per_item, write_per_item)):
        if path:
            try:
                write(report, path)
            except OSError as err:
                print(safeio.printable(f"error: {option} {path}: cannot write ({err.strerror})"), file=sys.stderr)
                return ExitStatus.USAGE
    return report.exit_status


def _judge(report, model: str) -> int | None:
    """The unparsed answers decided by the judge model; the count, or None (after a message) when it cannot load."""
    from models.local.registry import ModelRegistry, RegistryError
    from evaluation.judge import judge_unparsed

    try:
        judged = judge_unparsed(report, ModelRegistry(model))
    except (RegistryError, OSError, ValueError) as err:
        print(safeio.printable(f"error: --extractor {model}: {err}"), file=sys.stderr)
        return None
    report.extractor = f"rules, then the judge model {model} for answers they could not read ({judged} decided)"
    return judged


def what_if_command(args: argparse.Namespace) -> int:
    from evaluation.postprocess import PostprocessError
    from evaluation.whatif import render_what_if, what_if

    try:
        rows = what_if(args.ref, args.pred, tuple(args.postprocess))
    except DataFileError as err:  # the reference's or the predictions' (ReferenceMalformed is one)
        return print_file_error(err, EXIT_REFERENCE_MALFORMED, EXIT_PREDICTIONS_MALFORMED)
    except PostprocessError as err:
        print(safeio.printable(f"error: {err}"), file=sys.stderr)
        return ExitStatus.USAGE
    print(safeio.printable(render_what_if(rows)))
    return ExitStatus.OK


def check_outputs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Output files go into folders that exist: found before scoring, not in a traceback after it."""
    from evaluation.postprocess import PostprocessError, check_names

    try:
        check_names(args.postprocess)
    except PostprocessError as err:
        parser.error(str(err))
    for option, path in (("--json", args.json_out), ("--per-item", args.per_item)):
        if path and not Path(path).resolve().parent.is_dir():
            parser.error(f"{option} {path}: the folder {Path(path).resolve().parent} does not exist")
        if path and Path(path).is_dir():
            parser.error(f"{option} {path}: is a folder; give a file name")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = safeio.parse_cli(parser, argv)
    try:
        if args.command == "score":
            check_outputs(parser, args)
            try:
                code = score_command(args)
                sys.stdout.flush()  # inside the try: a reader gone (`| head`) is seen here, not at exit
                return code
            except WeightsError as err:
                parser.error(str(err))
        if args.command == "run":
            return run_command(args)
        if args.command == "predict":
            return predict_command(args)
        if args.command == "check":
            return check_command(args)
    except BrokenPipeError:
        return safeio.stdout_closed()
    except Exception as err:  # noqa: BLE001 - the last resort: one line, not a traceback (exit status 1, a bug)
        if os.environ.get("MEDTUNE_DEBUG"):
            raise
        print(safeio.printable(f"error: internal error ({type(err).__name__}: {err}); please report it"),
              file=sys.stderr)
        return ExitStatus.INTERNAL
    return ExitStatus.USAGE
