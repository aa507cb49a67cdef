"""`python -m evaluation predict`: answer an unlabelled test set, one submission per model (evaluation/predict.py)."""

from __future__ import annotations

import argparse
import sys

import safeio
from safeio import ExitStatus
from evaluation.data import DataFileError
from evaluation.postprocess import PostprocessError
from evaluation.predict import MC_OUTPUTS, PREDICT_METHODS, PredictConfig, predict
from evaluation.prompts import DEFAULT_MC_TEMPLATE, DEFAULT_SYSTEM, PromptConfig
from evaluation.report import render_file_error
from evaluation.run import EvalCancelled, EvalError
from evaluation.run_cli import (
    EXIT_CANCELLED, EXIT_DATA_MALFORMED, EXIT_MODEL_ERROR, _progress_printer, add_model_arguments, models_from_args,
)
from evaluation.tasks import TASKS

PREDICT_EPILOG = """The submission has the test file's shape: every field of each line kept, in order, with the answer
field filled (JSONL, JSON array or CSV, like the test file). Several models write <stem>-<model><suffix> each.
Answers are saved batch by batch to <stem>.progress.jsonl: running the same command again continues where it
stopped. Settings (model, adapter weights hash, data hash, method, prompt, decoding, seed) go to <stem>.meta.json.
A served model answers with --endpoint [NAME=]URL --model SERVED (as for `evaluation run`); one without
log-probabilities answers multiple choice by generation, and the meta's scored_by says why.
Then check the file before uploading: python -m evaluation check --test TEST --pred SUBMISSION

exit status: 0 done; 2 wrong usage; 3 the test file is malformed (nothing run); 6 a model or adapter cannot be
used; 130 interrupted (re-run to resume); 1 an unexpected internal error (a bug).
"""


def add_predict_parser(commands) -> None:
    p = commands.add_parser("predict", help="answer an unlabelled test set and write the submission",
                            epilog=PREDICT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p, "answer")
    p.add_argument("--data", required=True, help="the test file: JSONL, JSON array or CSV, answers not needed")
    p.add_argument("--out", required=True, help="the submission file (one per model when several)")
    p.add_argument("--task", choices=("auto", *TASKS), default="auto",
                   help="multiple choice (mc) or free-form (qa); detected from the rows by default")
    p.add_argument("--answer-field", default="output", help="the field the answer is written to (default output)")
    p.add_argument("--mc-output", choices=MC_OUTPUTS, default="letters",
                   help="multiple choice answers as letters ('BD', default), the options' text, or both")
    p.add_argument("--method", choices=PREDICT_METHODS, default="likelihood", help="multiple-choice method")
    p.add_argument("--multi-threshold", type=float,
                   help="likelihood: answer every letter with probability >= this (multi-answer items)")
    p.add_argument("--postprocess", action="append", default=[], metavar="NAME",
                   help="free-form answers: strip_markdown, strip_question, collapse_whitespace, cut=N, fit=N, "
                        "stopwords=FILE (repeatable, applied in order)")
    p.add_argument("--batch-size", type=int, default=8, help="items per forward pass")
    p.add_argument("--system", default=DEFAULT_SYSTEM, help="system prompt ('' for none)")
    p.add_argument("--mc-template", default=DEFAULT_MC_TEMPLATE,
                   help="multiple-choice prompt with {question}, {options} and optionally {kind}")
    p.add_argument("--mc-max-new-tokens", type=int, default=32, help="generate method only")
    p.add_argument("--max-new-tokens", type=int, default=256, help="free-form answers")
    p.add_argument("--seed", type=int, default=0, help="random seed (recorded in the settings file)")
    safeio.add_arguments(p)


def predict_command(args: argparse.Namespace) -> int:
    from models.interface import ModelError
    from models.remote.endpoints import EndpointError

    try:
        directory, models = models_from_args(args)
        config = PredictConfig(
            data=args.data, out=args.out, models=tuple(models), task=args.task,
            answer_field=args.answer_field, mc_output=args.mc_output, method=args.method,
            batch_size=args.batch_size, mc_max_new_tokens=args.mc_max_new_tokens,
            max_new_tokens=args.max_new_tokens, multi_threshold=args.multi_threshold,
            postprocess=tuple(args.postprocess), prompt=PromptConfig(system=args.system, mc_template=args.mc_template),
            seed=args.seed, concurrency=args.concurrency)
        results = predict(directory, config, progress=_progress_printer())
    except DataFileError as err:
        print(safeio.printable(render_file_error(err.path, err.problems, EXIT_DATA_MALFORMED)), file=sys.stderr)
        return EXIT_DATA_MALFORMED
    except EndpointError as err:  # a malformed --endpoint / --endpoint-key flag
        print(safeio.printable(f"error: {err}"), file=sys.stderr)
        return ExitStatus.USAGE
    except ModelError as err:  # an unknown or unusable model, an endpoint that fails
        print(safeio.printable(f"error: {err}"), file=sys.stderr)
        return EXIT_MODEL_ERROR
    except (EvalError, PostprocessError, ValueError) as err:
        print(safeio.printable(f"error: {err}"), file=sys.stderr)
        return ExitStatus.USAGE
    except (KeyboardInterrupt, EvalCancelled):
        print("\ninterrupted: answered batches are saved; run the same command again to resume", file=sys.stderr)
        return EXIT_CANCELLED
    for r in results:
        note = f", {r.unparsed} replies with no readable letter written empty" if r.unparsed else ""
        note += (f", {safeio.plural(r.truncated, 'item')} longer than the context truncated from the left (lines in "
                 "the meta's long_items)" if r.truncated else "")
        print(safeio.printable(f"{r.model}: {r.n} answers in {r.out} ({r.answered_now} answered now{note}); "
                               f"settings in {r.meta}"))
    return ExitStatus.OK
