"""Untrusted text on a terminal: ids, answers and field names come from user files, and an escape sequence in
them (ESC [ 2 J, a title change, a hyperlink) would be obeyed by the terminal if printed raw."""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides that reorder what is shown.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str) -> str:
    """text with every control character written as a visible escape (\\x1b, \\u202e): safe to print."""
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
