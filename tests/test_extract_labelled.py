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


TREATMENT = {"A": "手术切除", "B": "放射治疗", "C": "化学治疗", "D": "观察随访"}


@pytest.mark.parametrize("text, expected", [
    ("首选的处理是手术切除。", "A"),
    ("CT示占位，MRI提示ⅡA期，首选手术切除", "A"),
    ("手术切除是错误的，应选放射治疗", "B"),
    ("正确的是手术切除、放射治疗", "AB"),  # one list after one cue: a multi-answer
    ("答案 A B", "AB"),
    ("The answer is A B", "AB"),
    ("A C", "AC"),
    # no reading where a careful grader would give none
    ("选项：\nA. 手术切除\nB. 放射治疗", None),  # an echo of the options
    ("不是手术切除，也不是放射治疗", None),
    ("手术切除和放射治疗都不对", None),
    ("首选手术切除，其次可选放射治疗", None),  # two asserted apart
    ("应该是手术切除或者放射治疗", None),
    ("The answer is 手术切除 or 放射治疗", None),
    ("我认为是化学治疗，但也可能是观察随访", None),
    ("A B C D E F G", None),
    ("B项：手术切除，错误。", None),
])
def test_asserted_text_and_spaced_letters(text, expected):
    assert extract_answer(text, TREATMENT) == expected
