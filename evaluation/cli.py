"""`python -m evaluation score --ref REF --pred PRED [--json R] [--per-item I] [--task auto|mc|qa] [--weights W]`;
`python -m evaluation run --model M [--adapter A ...] --data D ... --out DIR` (see evaluation/run_cli.py)."""

from __future__ import annotations

import argparse
import sys

from evaluation.data import DataFileError
from evaluation.run_cli import add_run_parser, run_command
from evaluation.report import render_file_error, render_text, write_json, write_per_item
from evaluation.submission import (
    DEFAULT_MAX_ANSWER_CHARS, EXIT_PREDICTIONS_MALFORMED, EXIT_REFERENCE_MALFORMED, ReferenceMalformed, WeightsError,
    score_submission,
)

EPILOG = """exit status:
  0  scored; the predictions file is valid (warnings such as empty answers may be listed)
  2  wrong command-line usage
  3  the reference file is malformed (nothing scored)
  4  the predictions file is malformed (broken lines, missing or wrong fields; the rest is scored)
  5  the predictions do not match the reference (missing, unknown or duplicate ids, lines out of order)
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
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    score.add_argument("--ref", required=True, help="reference file (JSONL, JSON array or CSV)")
    score.add_argument("--pred", required=True, help="predictions file: one {\"id\"?, \"output\"} per reference item")
    score.add_argument("--task", choices=["auto", "mc", "qa"], default="auto",
                       help="multiple choice (mc) or free-form (qa); detected from the reference by default")
    score.add_argument("--weights", help="combined score, e.g. 'rouge-l=0.5,bleu-4=0.5' (default: accuracy for mc, "
                                         "rouge-l for qa)")
    score.add_argument("--max-answer-chars", type=_positive_int, default=DEFAULT_MAX_ANSWER_CHARS, metavar="N",
                       help="cut answers longer than N characters before extraction and ROUGE/BLEU, with a warning "
                            f"on their line (default {DEFAULT_MAX_ANSWER_CHARS:,})")
    score.add_argument("--json", dest="json_out", help="write the report as JSON to this file")
    score.add_argument("--per-item", help="write one scored row per reference item to this JSONL file")
    add_run_parser(commands)
    return parser


def score_command(args: argparse.Namespace) -> int:
    try:
        report = score_submission(args.ref, args.pred, args.task, args.weights, args.max_answer_chars)
    except ReferenceMalformed as err:
        print(render_file_error(err.path, err.problems, EXIT_REFERENCE_MALFORMED), file=sys.stderr)
        return EXIT_REFERENCE_MALFORMED
    except DataFileError as err:
        print(render_file_error(err.path, err.problems, EXIT_PREDICTIONS_MALFORMED), file=sys.stderr)
        return EXIT_PREDICTIONS_MALFORMED
    print(render_text(report))
    if args.json_out:
        write_json(report, args.json_out)
    if args.per_item:
        write_per_item(report, args.per_item)
    return report.exit_status


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "score":
        try:
            return score_command(args)
        except WeightsError as err:
            parser.error(str(err))
    if args.command == "run":
        return run_command(args)
    return 2
