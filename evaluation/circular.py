"""Multiple choice by likelihood, asked the CircularEval way (MMBench): each question once per rotation of its
options' texts over the letters (A B C D, then B C D A under the letters A-D, ...). An item is right only when the
model picks the right text every time, so a model that guesses or always favours one position scores low: the
gap between plain and circular accuracy shows position bias. Reported separately from the plain accuracy."""

from __future__ import annotations

from dataclasses import replace

from evaluation.data import MCItem


def rotate(item: MCItem, k: int) -> tuple[MCItem, dict[str, str]]:
    """The item with its options' texts shifted k places over its letters, and the map new letter -> original."""
    letters = list(item.options)
    texts = list(item.options.values())
    n = len(letters)
    back = {letters[i]: letters[(i + k) % n] for i in range(n)}
    forward = {original: new for new, original in back.items()}
    answer = "".join(sorted(forward[letter] for letter in item.answer))
    return replace(item, options={letters[i]: texts[(i + k) % n] for i in range(n)}, answer=answer), back


def circular_rows(registry, adapter, items: list[MCItem], rows: list[dict], render, likelihood) -> list[dict]:
    """`rows` (rotation 0, already scored) with `circular_correct` and the picks of every rotation, mapped back to
    the original letters. `render(item)` makes an item's prompt; `likelihood(items, prompts)` gives its rows."""
    picks = [[row["prediction"]] for row in rows]
    for k in range(1, max(len(item.options) for item in items)):
        chosen = [i for i, item in enumerate(items) if k < len(item.options)]
        rotated = [rotate(items[i], k) for i in chosen]
        got = likelihood([r[0] for r in rotated], [render(r[0]) for r in rotated])
        for i, (_, back), row in zip(chosen, rotated, got):
            picks[i].append("".join(sorted(back[letter] for letter in row["prediction"])))
    return [row | {"circular_picks": p, "circular_correct": all(pick == item.answer for pick in p)}
            for row, item, p in zip(rows, items, picks)]


def circular_summary(rows: list[dict]) -> dict | None:
    """The separate figure: accuracy when every rotation must be right; None when the run was not circular."""
    if not rows or "circular_correct" not in rows[0]:
        return None
    return {"accuracy": 100.0 * sum(r["circular_correct"] for r in rows) / len(rows),
            "plain_accuracy": 100.0 * sum(r["correct"] for r in rows) / len(rows),
            "note": "CircularEval: each item asked once per rotation of its options over the letters; right only "
                    "when right every time"}
