"""`python -m evaluation run`: evaluate a base model and adapters on validation sets (see evaluation/run.py)."""

from __future__ import annotations

import argparse
import os
import sys

import safeio
from evaluation.data import DataFileError
from evaluation.prompts import DEFAULT_MC_TEMPLATE, DEFAULT_SYSTEM, PromptConfig
from evaluation.report import render_file_error, table
from evaluation.run import LONG_ITEMS, METHODS, EvalCancelled, EvalConfig, EvalError, Progress, evaluate
from evaluation.tasks import get_task

from safeio import ExitStatus

EXIT_DATA_MALFORMED = ExitStatus.INPUT_MALFORMED
EXIT_MODEL_ERROR = ExitStatus.MODEL_UNUSABLE
EXIT_CANCELLED = ExitStatus.INTERRUPTED
RUN_EPILOG = """Every (model, data set) pair writes <out>/<model>/<set>-<key>/ with predictions.jsonl (submission
format), items.jsonl (one scored row per item, written batch by batch) and report.json. Running the same command
again skips finished items, so an interrupted run resumes where it stopped.

exit status: 0 done; 2 wrong usage; 3 a data file is malformed (nothing run); 6 a model or adapter cannot be used;
130 interrupted (re-run to resume); 1 an unexpected internal error (a bug). Data files are read within limits
(--max-rows, --max-field-length, ...); a file over one is malformed (3).
"""


def add_run_parser(commands) -> None:
    run = commands.add_parser("run", help="evaluate a base model and adapters on validation sets", epilog=RUN_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(run, "evaluate")
    run.add_argument("--data", action="append", required=True,
                     help="validation set: multiple choice or free-form, JSONL/JSON/CSV (repeatable)")
    run.add_argument("--out", required=True, help="results folder")
    run.add_argument("--method", choices=METHODS, default="likelihood", help="multiple-choice method")
    run.add_argument("--batch-size", type=int, default=8, help="items per forward pass")
    run.add_argument("--limit", type=int, help="evaluate the first N items of each set")
    run.add_argument("--shots", type=int, default=0, help="k-shot examples taken from --shots-data")
    run.add_argument("--shots-data", action="append", default=[], help="file of examples (one per task)")
    run.add_argument("--system", default=DEFAULT_SYSTEM, help="system prompt ('' for none)")
    run.add_argument("--mc-template", default=DEFAULT_MC_TEMPLATE,
                     help="multiple-choice prompt with {question}, {options} and optionally {kind}")
    run.add_argument("--mc-max-new-tokens", type=int, default=32, help="generate method only")
    run.add_argument("--max-new-tokens", type=int, default=256, help="free-form answers")
    run.add_argument("--multi-threshold", type=float,
                     help="likelihood: predict every letter with probability >= this (multi-answer items)")
    run.add_argument("--circular", action="store_true",
                     help="likelihood: also ask each item with its options rotated; right only if right every time "
                          "(CircularEval), reported separately")
    run.add_argument("--seed", type=int, default=0, help="random seed (recorded in every report)")
    run.add_argument("--long-items", choices=LONG_ITEMS, default="truncate",
                     help="an item longer than the model's context: cut its prompt from the left so that it and the "
                          "answer fit (truncate, default), or leave it out of the scores (skip); either way counted "
                          "in report.json and noted on its row of items.jsonl")
    safeio.add_arguments(run)


def add_model_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    """Which models answer, the same for `run` and `predict`: the in-process base and adapters, or the models of
    OpenAI-compatible endpoints (read by `models_from_args`)."""
    parser.add_argument("--model", action="append", default=[],
                        help="base model: hub id, local directory or 'demo' (default; env MEDTUNE_MODEL); with "
                             "--endpoint: a served model's name (repeatable; default: every model it lists)")
    parser.add_argument("--hub", default=None, help="huggingface (default) or modelscope (env MEDTUNE_HUB)")
    parser.add_argument("--endpoint", action="append", default=[], metavar="[NAME=]URL",
                        help=f"{verb} with the models of this OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1)")
    parser.add_argument("--endpoint-key", action="append", default=[], metavar="NAME=ENV_VAR",
                        help="the environment variable holding an endpoint's key (never the key itself)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight to a remote model (default 8)")
    parser.add_argument("--adapter", action="append", default=[],
                        help="LoRA adapter directory, hub id, or name under <data-dir>/adapters (repeatable)")
    parser.add_argument("--no-base", action="store_true", help=f"{verb} only with the adapters, not the base model")
    parser.add_argument("--data-dir", default=os.environ.get("MEDTUNE_DATA_DIR", "runs"),
                        help="app data folder whose adapters/ holds named adapters (env MEDTUNE_DATA_DIR; default "
                             "./runs)")
    parser.add_argument("--trust-remote-code", action="store_true", help="run the model repository's own code")


def _progress_printer():
    from tqdm import tqdm

    bars: dict[tuple[str, str], tqdm] = {}

    def show(p: Progress) -> None:
        bar = bars.get((p.model, p.dataset))
        if bar is None:
            bar = bars[(p.model, p.dataset)] = tqdm(total=p.total, desc=f"{p.model} · {p.dataset}", unit="item",
                                                    file=sys.stderr, dynamic_ncols=True)
        bar.update(p.done - bar.n)
        if p.done >= p.total:
            bar.close()

    return show


def models_from_args(args: argparse.Namespace):
    """(the model directory, the names to evaluate or predict with): in-process base and adapters, or an endpoint's models."""
    from models.directory import ModelDirectory
    from models.local.registry import ModelRegistry
    from models.remote.endpoints import parse_endpoint_flags
    from models.remote.model import remote_name

    if not args.endpoint:
        if len(args.model) > 1:
            raise EvalError("--model names the one base model; add adapters with --adapter (repeatable)",
                            "eval_one_base")
        base = args.model[0] if args.model else os.environ.get("MEDTUNE_MODEL", "demo")
        registry = ModelRegistry(base, args.data_dir, trust_remote_code=args.trust_remote_code, hub=args.hub)
        adapters = [registry.add_adapter(a) for a in args.adapter]
        return ModelDirectory(registry), ([] if args.no_base else [None]) + adapters
    if args.adapter:
        raise EvalError("--adapter is for in-process adapters; name an endpoint's models with --model",
                        "eval_adapter_remote")
    endpoints = parse_endpoint_flags(args.endpoint, args.endpoint_key, args.model if len(args.endpoint) == 1 else ())
    directory = ModelDirectory(None, endpoints)
    names = [remote_name(m["id"], e.name) for e in endpoints for m in directory.served(e)]
    return directory, names


def run_command(args: argparse.Namespace) -> int:
    from models.interface import ModelError
    from models.remote.endpoints import EndpointError

    try:
        directory, models = models_from_args(args)
        config = EvalConfig(data=tuple(args.data), out_dir=args.out, models=tuple(models), method=args.method,
                            batch_size=args.batch_size, limit=args.limit, shots=args.shots,
                            shots_data=tuple(args.shots_data), mc_max_new_tokens=args.mc_max_new_tokens,
                            qa_max_new_tokens=args.max_new_tokens, multi_threshold=args.multi_threshold,
                            circular=args.circular,
                            prompt=PromptConfig(system=args.system, mc_template=args.mc_template), seed=args.seed,
                            concurrency=args.concurrency, long_items=args.long_items)
        results = evaluate(directory, config, progress=_progress_printer())
    except DataFileError as err:
        print(safeio.printable(render_file_error(err.path, err.problems, EXIT_DATA_MALFORMED)), file=sys.stderr)
        from evaluation.check import is_unlabelled

        if is_unlabelled(err.path):  # a test file: nothing to score, but it can be answered
            print(safeio.printable(f"{err.path} has no answers (a test file): to answer it, run python -m evaluation "
                                   f"predict --data {err.path} --out submission.jsonl"), file=sys.stderr)
        return EXIT_DATA_MALFORMED
    except EndpointError as err:  # a malformed --endpoint / --endpoint-key flag
        print(f"error: {err}", file=sys.stderr)
        return ExitStatus.USAGE
    except ModelError as err:  # an unknown or unusable model, an endpoint that fails
        print(f"error: {err}", file=sys.stderr)
        return EXIT_MODEL_ERROR
    except (EvalError, ValueError) as err:  # settings (GenerationSettings, PromptConfig) raise ValueError
        print(f"error: {err}", file=sys.stderr)
        return ExitStatus.USAGE
    except (KeyboardInterrupt, EvalCancelled):
        print("\ninterrupted: finished batches are saved; run the same command again to resume", file=sys.stderr)
        return EXIT_CANCELLED
    print("\n".join(results_table(results)))
    for line in long_items_lines(results):
        print(line)
    for r in results:
        if r.report.get("circular"):
            c = r.report["circular"]
            print(f"circular {r.model} · {r.dataset}: {c['accuracy']:.2f} (plain {c['plain_accuracy']:.2f})")
    print(f"\nresults in {args.out}")
    return ExitStatus.OK


def long_items_lines(results) -> list[str]:
    """One line per cell that had items longer than the context: how many, what was done, a few of their ids."""
    lines = []
    for r in results:
        info = r.report.get("long_items") or {}
        for done in ("truncated", "skipped"):
            ids = info.get(f"{done}_ids") or []
            if ids:
                shown = ", ".join(map(str, ids[:5])) + (", ..." if len(ids) > 5 else "")
                how = "truncated from the left" if done == "truncated" else "skipped (not scored)"
                context = f"{info['context']} tokens, " if info.get("context") else ""
                many = f"{len(ids)} items were" if len(ids) > 1 else "1 item was"
                lines.append(f"{r.model} · {r.dataset}: {many} longer than the context "
                             f"({context}ids {shown}): {how}; see long_items in report.json")
    return lines


def results_table(results) -> list[str]:
    sets = [(name, get_task(task)) for name, task in dict.fromkeys((r.dataset, r.task) for r in results)]
    header = ["model"] + [f"{name} {task.short(m)}" for name, task in sets for m in task.metrics]
    rows = []
    for model in dict.fromkeys(r.model for r in results):
        row = [model]
        for name, task in sets:
            cell = next(r for r in results if r.model == model and r.dataset == name)
            row += [f"{cell.metrics[m]:.2f}" for m in task.metrics]
        rows.append(row)
    return table(header, rows)
