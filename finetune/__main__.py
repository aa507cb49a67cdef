"""Command line: preview data, train a LoRA adapter, merge it, list and stop jobs.

    python -m finetune preview --data train.jsonl [--model demo] [--format auto] [--column-map "output=回答"]
    python -m finetune train --config run.yaml            # or --model M --data F --output DIR and flags
    python -m finetune train --resume JOB_ID              # continue a stopped run from its last checkpoint
    python -m finetune merge --adapter DIR --out merged/ [--model M]
    python -m finetune jobs | stop JOB_ID

exit status (safeio.ExitStatus, the same for every command): 0 done; 1 an internal error or a failed run (see its
log); 2 wrong usage (a bad flag or setting, an unknown job id); 3 an input file cannot be used: a data file, a
config file, or preview keeping no row (the message names file, line and field, and the limit when one was hit);
6 a model or adapter cannot be used (training, merge); 7 the job is busy (another process trains it, or it did not
stop in time); 130 interrupted (a checkpoint is kept: `train --resume JOB_ID` continues).
Data files are read within limits (--max-rows, --max-field-length, ...: see `python -m finetune preview --help`).

Training runs started here are jobs like the app's (jobs/): registered in the data dir's store, listed in the app's
Jobs tab, owned by one process at a time (a second `train --resume` of a running job is refused), stoppable from the
app or with `stop`. This entry point sits above jobs/ (as app.py does); the finetune package itself never imports it.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path

import safeio
from safeio import ExitStatus
from finetune.config import PRECISIONS, SCHEDULERS, ConfigError, TrainConfig
from finetune.formats import FORMATS, DataError, parse_column_map
from jobs import cli as jobs_cli  # the job commands' bodies: an entry point may import jobs/ (docs/DESIGN.md)
from jobs.store import CLI_OWNER

DEFAULT_DATA_DIR = str(safeio.default_data_dir())
# CLI flag -> TrainConfig field, for the common knobs (everything else goes through --config / --set).
FLAGS = {
    "model": str, "data": str, "data_format": str, "val_split": float, "max_samples": int, "cutoff_len": int,
    "lora_rank": int, "lora_alpha": int, "lora_dropout": float, "lora_targets": str, "learning_rate": float,
    "lr_scheduler": str, "num_epochs": float, "max_steps": int, "batch_size": int, "grad_accum": int,
    "seed": int, "adapter_name": str, "precision": str, "eval_steps": int, "save_steps": int, "sample_every": int,
    "processes": int, "eval_every": int, "eval_limit": int, "eval_max_new_tokens": int, "select_by": str,
    "early_stop": int,
}
# What --help says of each: the allowed values where there is a fixed set (the default comes from TrainConfig).
FLAG_HELP = {
    "model": 'base model: hub id, local directory, or "demo"; without this flag or --config: $MEDTUNE_MODEL',
    "data": "training data file (.jsonl/.json/.csv/.xlsx)",
    "data_format": "auto | " + " | ".join(FORMATS), "val_split": "a fraction below 1, or a number of rows from 1 up",
    "max_samples": "rows used at most; 0 = all", "cutoff_len": "tokens per conversation; longer ones are truncated",
    "lora_rank": "LoRA rank r", "lora_alpha": "LoRA alpha", "lora_dropout": "between 0 and 0.99",
    "lora_targets": "all-linear | attention | comma-separated module names (q_proj,v_proj)",
    "learning_rate": "peak learning rate", "lr_scheduler": " | ".join(SCHEDULERS),
    "num_epochs": "passes over the data (ignored when --max-steps > 0)", "max_steps": "> 0 overrides --num-epochs",
    "batch_size": "rows per step per process", "grad_accum": "steps accumulated per optimizer update",
    "seed": "random seed", "adapter_name": "the adapter's name under <data-dir>/adapters/; empty = the job id",
    "precision": " | ".join(PRECISIONS) + " (auto picks from the hardware)",
    "eval_steps": "evaluate every N steps; 0 = only at the end", "save_steps": "checkpoint every N steps",
    "sample_every": "generate answers to the sample prompts every N steps; 0 = never",
    "processes": "processes per machine; > 1 runs data parallel under torchrun",
    "eval_every": "score the --eval-data sets every N steps (and at each epoch end); 0 = at each epoch end only",
    "eval_limit": "at most this many items per set (a fixed, seeded subset)",
    "eval_max_new_tokens": "answer length cap when scoring free-form sets",
    "select_by": "accuracy:SET | rouge-l:SET | eval_loss; empty = the first set's main metric, else eval_loss",
    "early_stop": "stop after this many evaluations without improvement; 0 = never",
}


def cmd_preview(args) -> int:
    from finetune.preview import load_tokenizer, preview_data

    model = args.model or os.environ.get("MEDTUNE_MODEL")  # flag > env, as every command; none: rows only
    tokenizer = load_tokenizer(model) if model else None
    result = preview_data(args.data, args.format, parse_column_map(args.column_map), tokenizer, args.n,
                          args.cutoff_len)
    # The data is the user's: its control characters are shown escaped, never sent to the terminal raw.
    for i, pieces in enumerate(result.examples, 1):
        print(f"--- example {i} (trained text between ⟦ and ⟧) ---")
        print(safeio.printable("".join(f"⟦{text}⟧" if trained else text for text, trained in pieces)))
    for rejected in result.loaded.rejected:
        print(safeio.printable(f"rejected: {rejected}"), file=sys.stderr)
    print(safeio.printable(result.summary()))
    return ExitStatus.OK if result.loaded.conversations else ExitStatus.INPUT_MALFORMED  # no row to train on


def config_from_args(args) -> TrainConfig:
    try:
        cfg = TrainConfig.load(args.config) if args.config else TrainConfig()
    except ConfigError as exc:
        exc.from_file = True  # a malformed config file (3), not a bad flag (2)
        raise
    if not args.config and os.environ.get("MEDTUNE_MODEL"):  # flag > config file > env > demo, as every command
        cfg.model = os.environ["MEDTUNE_MODEL"]
    for name, value in (pair for words in args.set or [] for pair in _set_pairs(words)):
        if name not in {f.name for f in fields(TrainConfig)}:
            raise ConfigError(name, "unknown setting")
        import yaml

        setattr(cfg, name, yaml.safe_load(value))  # --set lora_targets=q_proj,v_proj --set packing=false
    for name in FLAGS:
        value = getattr(args, name)
        if value is not None:
            setattr(cfg, name, value)
    if args.output:
        cfg.output_dir = str(Path(args.output).resolve())
    if args.no_packing:
        cfg.packing = False
    if args.load_in_4bit:
        cfg.load_in_4bit = True
    if args.column_map:
        cfg.column_map = parse_column_map(args.column_map)
    if args.eval_data:
        cfg.eval_sets = list(cfg.eval_sets) + list(args.eval_data)
    # The job runs from its own directory's config: the sets are recorded by absolute path.
    cfg.eval_sets = [str(Path(e).resolve()) if isinstance(e, str)
                     else {**e, "path": str(Path(e["path"]).resolve())}
                     if isinstance(e, dict) and isinstance(e.get("path"), str) else e for e in cfg.eval_sets]
    return cfg


def _set_pairs(words: list[str]) -> list[tuple[str, str]]:
    """--set FIELD=VALUE [FIELD=VALUE ...], or the older --set FIELD VALUE."""
    if all("=" in word for word in words):
        return [(name.strip(), value) for name, value in (word.split("=", 1) for word in words)]
    if len(words) == 2 and "=" not in words[0]:
        return [(words[0], words[1])]
    raise ConfigError("--set", f"expected FIELD=VALUE (e.g. --set packing=false), got {' '.join(words)!r}")


def cmd_train(args) -> int:
    """The flags and --config as a TrainConfig (finetune's part; not for --resume, which reads the job's own), run
    as a job of the data dir (jobs/cli.py)."""
    return jobs_cli.cmd_train(args, None if args.resume else config_from_args(args))


def cmd_merge(args) -> int:
    from finetune.merge import merge_adapter

    # A plain name is one under <data-dir>/adapters, as chat and evaluation take it (a directory by that name wins).
    adapter = Path(args.adapter)
    named = Path(args.data_dir) / "adapters" / args.adapter
    if not adapter.is_dir() and "/" not in args.adapter and named.is_dir():
        adapter = named
    if Path(args.out).exists():  # a usage error (2), checked here; merge's other refusals are the adapter's (6)
        raise ConfigError("--out", f"{args.out} already exists; choose a new output directory")
    out = merge_adapter(adapter, args.out, model=args.model, dtype=args.dtype,
                        trust_remote_code=args.trust_remote_code)
    print(f"merged model saved to {out}")
    return ExitStatus.OK


def cmd_presets(args) -> int:
    """`presets`: the table; `presets copy NAME FILE`: one preset as a YAML to edit."""
    from finetune import presets
    from models.units import human_bytes

    if args.action == "copy":
        if len(args.rest) != 2:
            print("usage: python -m finetune presets copy NAME run.yaml", file=sys.stderr)
            return ExitStatus.USAGE
        try:
            path = presets.copy_to(*args.rest)
        except (KeyError, FileExistsError) as exc:
            print(f"error: {exc.args[0]}", file=sys.stderr)
            return ExitStatus.USAGE
        print(f"wrote {path}; edit `data` (and anything else), then: python -m finetune train --config {path}")
        return ExitStatus.OK
    rows = [(p.name, p.config.model, p.method, human_bytes(presets.memory_needed(p)), p.note) for p in presets.PRESETS]
    widths = [max(len(str(r[i])) for r in rows + [("name", "model", "method", "GPU memory", "")]) for i in range(4)]
    print("  ".join(h.ljust(w) for h, w in zip(("name", "model", "method", "GPU memory"), widths)) + "  note")
    for row in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)) + "  " + row[4])
    print("\nGPU memory: an estimate for one GPU at the preset's batch size and length (weights, LoRA with Adam, "
          "activations, logits).\nCopy one: python -m finetune presets copy NAME run.yaml")
    return ExitStatus.OK


def _add_preview_parser(sub) -> None:
    """`preview`: read a data file as training would, without training."""
    p = sub.add_parser("preview", help="read a data file: rows kept / rejected, rendered examples, token counts",
                       formatter_class=safeio.HelpFormatter)
    p.add_argument("--data", required=True, help="data file (.jsonl/.json/.csv/.xlsx)")
    p.add_argument("--format", default="auto", choices=("auto",) + FORMATS, help="data format")
    p.add_argument("--column-map", default="", help='field=column pairs, e.g. "instruction=问题,output=回答"')
    p.add_argument("--model", default=None, help="render with this model's chat template and count tokens "
                                                  "(default: $MEDTUNE_MODEL, else none: rows only)")
    p.add_argument("--cutoff-len", type=int, default=1024, help="tokens per conversation")
    p.add_argument("-n", type=int, default=3, help="examples to show")
    safeio.add_arguments(p)
    p.set_defaults(func=cmd_preview)


def _add_train_parser(sub) -> None:
    """`train`: every TrainConfig field as a flag (default None: a flag given overrides --config)."""
    p = sub.add_parser("train", help="train a LoRA adapter (runs in the foreground; the app runs the same code)",
                       formatter_class=safeio.HelpFormatter)
    p.add_argument("--config", help="a TrainConfig YAML file (flags override it)")
    defaults = TrainConfig()
    # default None: a flag given overrides --config; the default shown is TrainConfig's
    for name, kind in FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None,
                       help=f"{FLAG_HELP.get(name, name.replace('_', ' '))} (default: {getattr(defaults, name)!r})".replace("%", "%%"))
    p.add_argument("--format", dest="data_format", type=str, default=None, help="alias of --data-format")
    p.add_argument("--epochs", dest="num_epochs", type=float, default=None, help="alias of --num-epochs")
    p.add_argument("--lr", dest="learning_rate", type=float, default=None, help="alias of --learning-rate")
    p.add_argument("--column-map", default="", help='field=column pairs, e.g. "instruction=问题,output=回答"')
    p.add_argument("--no-packing", action="store_true", help="one conversation per row (same as --set packing=false)")
    p.add_argument("--load-in-4bit", "--qlora", dest="load_in_4bit", action="store_true",
                   help="QLoRA: 4-bit base weights (needs CUDA and bitsandbytes)")
    p.add_argument("--set", nargs="+", action="append", metavar="FIELD=VALUE",
                   help="any other TrainConfig field, e.g. --set packing=false --set warmup_ratio=0.1 (repeatable)")
    p.add_argument("--output", help="final adapter directory (default <data-dir>/adapters/<adapter-name>)")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help=safeio.DATA_DIR_HELP)
    p.add_argument("--job-id", default=None, help="the job's id (default: date, time and adapter name)")
    p.add_argument("--resume", metavar="JOB_ID", help="continue this job from its last checkpoint")
    p.add_argument("--eval-data", nargs="+", metavar="FILE", default=None,
                   help="validation sets scored during training (multiple choice / free-form / competition files, "
                        "as the Evaluate tab reads); with --eval-every N, --eval-limit K, --select-by METRIC:SET, "
                        "--early-stop P")
    p.add_argument("--owner", default=CLI_OWNER,
                   help="the app user this job belongs to in the Jobs tab (default: the admin's only)")
    safeio.add_arguments(p)
    p.set_defaults(func=cmd_train)


def _add_merge_parser(sub) -> None:
    """`merge`: an adapter folded into its base model."""
    p = sub.add_parser("merge", help="merge an adapter into its base model", formatter_class=safeio.HelpFormatter)
    p.add_argument("--adapter", required=True,
                   help="adapter: a name under <data-dir>/adapters (as chat and evaluation take it) or a directory")
    p.add_argument("--out", required=True, help="folder for the merged model")
    p.add_argument("--model", default=None, help="base model (default: the one recorded in the adapter)")
    p.add_argument("--dtype", default="auto", choices=("auto", "bf16", "fp16", "fp32"),
                   help="dtype of the merged weights (auto: the base model's)")
    p.add_argument("--trust-remote-code", action="store_true", help="run the model repository's own code")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help=safeio.DATA_DIR_HELP)
    p.set_defaults(func=cmd_merge)


def _add_compare_parser(sub) -> None:
    """`compare`: finished runs side by side."""
    p = sub.add_parser("compare", help="finished runs side by side: a table and a chart of a metric by step")
    p.add_argument("runs", nargs="+", metavar="RUN", help="job directories, job ids or adapter directories")
    p.add_argument("--metric", default=None, help="e.g. accuracy:mc_val (default: the first task metric)")
    p.add_argument("--chart", default=None, metavar="FILE.png", help="write the chart as PNG instead of printing it")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help=safeio.DATA_DIR_HELP)
    p.set_defaults(func=jobs_cli.cmd_compare)


def _add_presets_parser(sub) -> None:
    """`presets`: ready-made settings per model and method."""
    p = sub.add_parser("presets", help="ready-made settings per model and method; `presets copy NAME run.yaml`")
    p.add_argument("action", nargs="?", default="list", choices=("list", "copy"),
                   help="list the presets, or copy one to a config file")
    p.add_argument("rest", nargs="*", metavar="NAME FILE", help="copy: the preset's name and the file to write")
    p.set_defaults(func=cmd_presets)


def _add_jobs_stop_parser(sub) -> None:
    """`jobs` and `stop`: the job system's commands (jobs/cli.py)."""
    for name, func, text in (("jobs", jobs_cli.cmd_jobs, "list jobs"),
                             ("stop", jobs_cli.cmd_stop, "stop a running job")):
        p = sub.add_parser(name, help=text, formatter_class=safeio.HelpFormatter)
        if name == "stop":
            p.add_argument("job_id", help="a job id from `python -m finetune jobs`")
        p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help=safeio.DATA_DIR_HELP)
        p.set_defaults(func=func)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m finetune", description=__doc__,
                                     formatter_class=safeio.HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_preview_parser(sub)
    _add_train_parser(sub)
    _add_merge_parser(sub)
    _add_compare_parser(sub)
    _add_presets_parser(sub)
    _add_jobs_stop_parser(sub)
    for command in sub.choices.values():  # every subcommand's --help shows each flag's default
        command.formatter_class = safeio.HelpFormatter
    return parser


def main(argv: list[str] | None = None) -> int:
    from finetune.merge import MergeError
    from jobs.files import JobError
    from models.interface import ModelError

    parser = build_parser()
    args = safeio.parse_cli(parser, argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # inside the try: a reader gone (`| head`) is seen here, not as a traceback at exit
        return code
    except BrokenPipeError:
        return safeio.stdout_closed()
    except (ConfigError, DataError, JobError, ModelError, MergeError) as exc:
        print(safeio.printable(f"error: {exc}"), file=sys.stderr)
        return error_status(exc)
    except Exception as exc:  # noqa: BLE001 - merge / model load errors: one line, not a traceback
        if os.environ.get("MEDTUNE_DEBUG"):
            raise
        print(safeio.printable(f"error: {type(exc).__name__}: {exc}"), file=sys.stderr)
        return ExitStatus.INTERNAL


def error_status(exc: Exception) -> ExitStatus:
    """The shared exit status of a refusal: a data file or config file that cannot be used 3, a model 6, a job
    that another process owns 7, a bad flag, setting or job id 2."""
    from finetune.merge import MergeError
    from jobs.process import JobBusy
    from models.interface import ModelError

    if isinstance(exc, DataError) or getattr(exc, "from_file", False):
        return ExitStatus.INPUT_MALFORMED
    if isinstance(exc, (ModelError, MergeError)):  # merge: an adapter or its base that cannot be loaded
        return ExitStatus.MODEL_UNUSABLE
    if isinstance(exc, JobBusy):
        return ExitStatus.BUSY
    return ExitStatus.USAGE


if __name__ == "__main__":
    sys.exit(main())
