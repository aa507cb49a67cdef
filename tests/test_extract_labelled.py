"""Answer extraction on 600 labelled model outputs (tests/extract_labelled.jsonl, written by
tests/extract_labelled_build.py over public exam items): short, long, chain-of-thought, option text only, English,
refusals, hedges, letters among medical abbreviations, label + colon, multi-answers separated by spaces.

Measured on this set: before this work 74.3% read right with 9.3% false readings; now 100% right, 0% false. The
bar asserted is the issue's: at least 99% right, at most 1% false readings (a letter read where the output chose
another one, or none)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from evaluation.extract import extract_answer

ROWS = [json.loads(line) for line in
        (Path(__file__).resolve().parent / "extract_labelled.jsonl").read_text(encoding="utf-8").splitlines()]
KINDS = sorted({r["kind"] for r in ROWS})


def test_the_set_covers_every_kind():
    counts = Counter(r["kind"] for r in ROWS)
    assert len(ROWS) >= 300 and all(n >= 15 for n in counts.values()), counts
    assert {"refusal", "hedge", "text_only", "multi_spaces", "english", "cot", "label_colon"} <= set(counts)
    assert sum(r["expected"] is None for r in ROWS) >= 60  # enough no-answer outputs to measure false readings


def test_right_and_false_rates():
    got = [extract_answer(r["output"], r["options"]) for r in ROWS]
    right = sum(g == r["expected"] for g, r in zip(got, ROWS)) / len(ROWS)
    false = sum(g is not None and g != r["expected"] for g, r in zip(got, ROWS)) / len(ROWS)
    assert right >= 0.99 and false <= 0.01, (right, false)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind(kind):
    rows = [r for r in ROWS if r["kind"] == kind]
    wrong = [(r["output"][:60], r["expected"], extract_answer(r["output"], r["options"])) for r in rows
             if extract_answer(r["output"], r["options"]) != r["expected"]]
    assert len(wrong) <= len(rows) // 50, wrong[:5]  # at most 2% of a kind
