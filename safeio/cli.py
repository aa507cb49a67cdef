"""Conventions every command line shares (app.py, finetune, evaluation, chat, hosting.users): the data folder and the
help format.

The data folder (jobs, adapters, votes, users file, sessions): `--data-dir DIR`, else $MEDTUNE_DATA_DIR, else `runs` in the current directory. It once was the checkout's `runs/`
for the app and `hosting.users` but the current directory's for the other CLIs, so `hosting.users list` run from
elsewhere looked in another folder than the app it was meant for.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Mapping

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
