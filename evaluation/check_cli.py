"""`python -m evaluation check --test TEST --pred SUBMISSION`: validate a submission without scoring it."""

from __future__ import annotations

import argparse
import json
import sys

import safeio
from safeio import ExitStatus
from evaluation.check import check_submission, render_check
from evaluation.data import DataFileError
from evaluation.report import print_file_error
from evaluation.submission import EXIT_PREDICTIONS_MALFORMED, EXIT_REFERENCE_MALFORMED
from evaluation.tasks import TASKS

CHECK_EPILOG = """Checks, each problem named by line, id and field: the same number of lines as the test file; ids
(when both files have them) or line order; the test line's fields echoed unchanged; the answer field present and a
string; multiple-choice letters among the item's own options; empty answers; duplicate lines; the encoding.

exit status: 0 valid (warnings such as empty answers may be listed); 2 wrong usage; 3 the test file is malformed;
4 the submission is malformed; 5 the submission does not match the test file; 1 an unexpected internal error.
"""


def add_check_parser(commands) -> None:
    p = commands.add_parser("check", help="check a submission against the test file it answers (no scoring)",
                            epilog=CHECK_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--test", required=True, help="the test file (answers not needed)")
    p.add_argument("--pred", required=True, help="the submission")
    p.add_argument("--answer-field", default="output", help="the field holding each answer (default output)")
    p.add_argument("--task", choices=("auto", *TASKS), default="auto",
                   help="multiple choice or free-form (auto: detected from the test file)")
    p.add_argument("--mc-output", choices=("letters", "text", "both"), default="letters",
                   help="what multiple-choice answers hold: letters only are checked against the options")
    p.add_argument("--json", dest="json_out", help="write the problems as JSON to this file")
    safeio.add_arguments(p)


def check_command(args: argparse.Namespace, test: str | None = None, pred: str | None = None) -> int:
    """Also what `score` runs when its reference has no answers (test, pred given)."""
    test = test or args.test
    pred = pred or args.pred
    try:
        report = check_submission(test, pred, getattr(args, "answer_field", "output"), getattr(args, "task", "auto"),
                                  letters_only=getattr(args, "mc_output", "letters") == "letters")
    except DataFileError as err:  # the reference's or the predictions' (ReferenceMalformed is one)
        return print_file_error(err, EXIT_REFERENCE_MALFORMED, EXIT_PREDICTIONS_MALFORMED)
    print(safeio.printable(render_check(report)))
    if getattr(args, "json_out", None):
        try:
            with open(args.json_out, "w", encoding="utf-8") as handle:
                json.dump(report.to_dict(), handle, ensure_ascii=False, indent=2)
        except OSError as err:
            print(safeio.printable(f"error: --json {args.json_out}: cannot write ({err.strerror})"), file=sys.stderr)
            return ExitStatus.USAGE
    return report.exit_status
