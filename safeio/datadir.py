"""The one rule for the data folder (jobs, adapters, votes, users file, sessions), shared by app.py and every CLI.

`--data-dir DIR`, else $MEDTUNE_DATA_DIR, else `runs` in the current directory. It once was the checkout's `runs/`
for the app and `hosting.users` but the current directory's for the other CLIs, so `hosting.users list` run from
elsewhere looked in another folder than the app it was meant for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

DATA_DIR_ENV = "MEDTUNE_DATA_DIR"
DATA_DIR_HELP = "data folder: jobs, adapters, votes, users file, sessions (env MEDTUNE_DATA_DIR; default ./runs)"


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get(DATA_DIR_ENV) or "runs")
