"""Bounded reading of user data files and a memory-limited worker process for parsing them.

Imports nothing of the project and no gradio: finetune/, evaluation/ and ui/ all build on it.
"""

from safeio.cli import (
    DATA_DIR_HELP, EXIT_MEANINGS, ExitStatus, HelpFormatter, exit_epilog, add_verbose, default_data_dir, parse_cli,
    plural, quiet_libraries, stdout_closed,
)
from safeio.errors import LimitExceeded, SafeReadError
from safeio.limits import Limits, add_arguments, current, from_args, from_env, set_current
from safeio.readers import (
    check_file, check_xlsx, iter_csv, iter_json_array, iter_lines, iter_xlsx, json_loads, read_bytes, single_object,
)
from safeio.text import printable

__all__ = [
    "DATA_DIR_HELP", "EXIT_MEANINGS", "ExitStatus", "HelpFormatter", "exit_epilog", "LimitExceeded", "Limits", "add_verbose", "parse_cli", "default_data_dir", "plural", "quiet_libraries", "stdout_closed", "SafeReadError", "add_arguments", "check_file", "check_xlsx", "current", "from_args",
    "from_env", "iter_csv", "iter_json_array", "iter_lines", "iter_xlsx", "json_loads", "printable", "read_bytes", "set_current",
    "single_object",
]
