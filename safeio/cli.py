"""Conventions every command line shares (app.py, finetune, evaluation, chat, hosting.users): the data folder and the
help format.

The data folder (jobs, adapters, votes, users file, sessions): `--data-dir DIR`, else $MEDTUNE_DATA_DIR, else `runs`
in the current directory. It once was the checkout's `runs/`
for the app and `hosting.users` but the current directory's for the other CLIs, so `hosting.users list` run from
elsewhere looked in another folder than the app it was meant for.
"""

from __future__ import annotations

import argparse
import os
import sys
from enum import IntEnum
from pathlib import Path
from typing import Mapping



class ExitStatus(IntEnum):
    """The exit statuses of every command (app.py, finetune, evaluation, chat, hosting.users), defined once: the
    README's one table lists them (tests/test_cli_conventions.py checks that it matches). A script can tell "fix
    the command" (2) from "fix the file" (3, 4, 5) from "fix the model" (6) from "wait" (7)."""

    OK = 0  # done (`evaluation score`: the predictions are valid; warnings may be listed)
    INTERNAL = 1  # an unexpected error (a bug: the message says so), or a run that failed for a reason logged
    USAGE = 2  # a bad flag, value or setting (argparse's own status), a name that does not exist
    INPUT_MALFORMED = 3  # an input file cannot be used: data, test set, reference, config, users file
    PREDICTIONS_MALFORMED = 4  # the predictions / submission file is malformed (the rest is still checked)
    PREDICTIONS_MISMATCH = 5  # the predictions do not match the reference (ids, order, count)
    MODEL_UNUSABLE = 6  # a model or adapter cannot be loaded or used (the message says why)
    BUSY = 7  # a job is owned by another process, or still running
    INTERRUPTED = 130  # Ctrl-C or a stop: what is done is saved, the same command again resumes


# What each status means, for --help epilogs and the README's table (the table's wording is the README's own).
EXIT_MEANINGS = {
    ExitStatus.OK: "done",
    ExitStatus.INTERNAL: "an internal error (a bug) or a failed run (see its log)",
    ExitStatus.USAGE: "wrong usage (a bad flag or value)",
    ExitStatus.INPUT_MALFORMED: "an input file is malformed (data, test set, reference, config, users file)",
    ExitStatus.PREDICTIONS_MALFORMED: "the predictions file is malformed",
    ExitStatus.PREDICTIONS_MISMATCH: "the predictions do not match the reference",
    ExitStatus.MODEL_UNUSABLE: "a model or adapter cannot be used",
    ExitStatus.BUSY: "a job is busy (owned by another process, or still running)",
    ExitStatus.INTERRUPTED: "interrupted (the same command again resumes)",
}


def exit_epilog(*statuses: ExitStatus) -> str:
    """`exit status: 0 done; 2 wrong usage; ...` for a command's --help, from the one definition."""
    return "exit status: " + "; ".join(f"{int(s)} {EXIT_MEANINGS[s]}" for s in statuses) + "."


DATA_DIR_ENV = "MEDTUNE_DATA_DIR"
DATA_DIR_HELP = "data folder: jobs, adapters, votes, users file, sessions (env MEDTUNE_DATA_DIR; default ./runs)"


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get(DATA_DIR_ENV) or "runs")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help keeps the description's line breaks and shows every flag's default after its help (unless the help
    already says it, or there is none to show)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default is None or action.default is argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + "s" * (n != 1)


def add_verbose(parser: argparse.ArgumentParser) -> None:
    """--verbose on the parser and every subcommand (users type it after the subcommand)."""
    parser.add_argument("--verbose", action="store_true", default=False,
                        help="also show the libraries' warnings and loading bars")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                                 help="also show the libraries' warnings and loading bars (default: off)")


def parse_cli(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """What every CLI of ours does first: --verbose on every subcommand, the arguments, library chatter hidden unless
    --verbose, and the file limits from the flags (over MEDTUNE_MAX_* over the defaults) for this process."""
    from safeio.limits import from_args, set_current

    add_verbose(parser)
    args = parser.parse_args(argv)
    quiet_libraries(args.verbose)
    try:
        set_current(from_args(args))
    except ValueError as err:  # a bad MEDTUNE_MAX_* value
        parser.error(str(err))
    return args


def quiet_libraries(verbose: bool) -> None:
    """Hide library chatter that is no concern of the user (transformers' FutureWarnings and "Token indices
    sequence length" warnings, "Loading weights" bars) unless --verbose. Before transformers is imported; through
    the environment so that job processes started from here inherit it. Our own progress bars are plain tqdm."""
    if verbose:
        return
    import warnings

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")
    warnings.filterwarnings("ignore", category=FutureWarning)
    if "transformers" in sys.modules:  # imported already (chat's registry): the environment came too late
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


def stdout_closed() -> int:
    """`python -m finetune jobs | head`: the reader left; end quietly (no BrokenPipeError traceback at exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return ExitStatus.INTERNAL
