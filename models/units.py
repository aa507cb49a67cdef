"""Sizes as people read them, one way on every page, report and message: binary units ("512.0 MiB", "1.5 GiB").

Binary because memory is (a "16 GB" GPU holds 16 GiB, and free-memory figures come from it), and one unit system
for files on disk too, so that a model's size on disk and in memory can be compared at a glance (the Chat tab shows
both side by side). Here, at the ground floor, so that models/, chat/, finetune/ and ui/ all format with it.
"""

from __future__ import annotations

_UNITS = ("KiB", "MiB", "GiB", "TiB")


def human_bytes(n: float | None) -> str:
    """`n` bytes as "1000 B", "3.9 KiB", "512.0 MiB", "1.5 GiB"; "?" when unknown (None)."""
    if n is None:
        return "?"
    if abs(n) < 1024:
        return f"{int(n)} B"
    for unit in _UNITS:
        n /= 1024
        if abs(n) < 1024 or unit == _UNITS[-1]:
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")  # the loop always returns at its last unit
