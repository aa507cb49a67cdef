"""`score --extractor MODEL`: only the answers the rules leave unparsed go to the judge, whose reply is read
strictly; the report names the judge. The always-"B" model as the judge makes the outcome exact."""

from __future__ import annotations

import json

import pytest

from evaluate_fixtures import build_always_b_model
from evaluation.cli import main
from evaluation.judge import judge_reply_letters

OPTIONS = {"A": "甲", "B": "乙", "C": "丙", "D": "丁"}


@pytest.mark.parametrize("reply, expected", [
    ("B", "B"), (" b。", "B"), ("B, D", "BD"), ("DB", "BD"), ("NONE", None), ("", None), ("E", None),
    ("答案是B", None), ("BB", "B"),
])
def test_the_judges_reply_is_read_strictly(reply, expected):
    assert judge_reply_letters(reply, OPTIONS) == expected


def test_unparsed_answers_are_judged_and_the_report_names_the_judge(tmp_path):
    ref, pred = tmp_path / "ref.jsonl", tmp_path / "pred.jsonl"
    items = [{"id": str(i), "question": f"问题{i}", "options": OPTIONS, "answer": key}
             for i, key in enumerate(["B", "B", "C", "B"])]
    ref.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items), encoding="utf-8")
    answers = ["嗯，这个嘛……", "", "我选C", "我觉得这题很难说清楚"]  # unparsed, empty, read by rules, unparsed
    pred.write_text("".join(json.dumps({"id": str(i), "output": a}, ensure_ascii=False) + "\n"
                            for i, a in enumerate(answers)), encoding="utf-8")
    plain = tmp_path / "plain.json"
    assert main(["score", "--ref", str(ref), "--pred", str(pred), "--json", str(plain)]) == 0
    assert json.loads(plain.read_text())["accuracy"] == 25.0
    judge = build_always_b_model(tmp_path / "judge")
    report = tmp_path / "judged.json"
    assert main(["score", "--ref", str(ref), "--pred", str(pred), "--extractor", str(judge),
                 "--json", str(report)]) == 0
    saved = json.loads(report.read_text())
    assert saved["accuracy"] == 75.0 and saved["unparsed"] == 1  # both judged B; the empty one is not judged
    assert "judge model" in saved["conventions"]["extractor"] and "(2 decided)" in saved["conventions"]["extractor"]
    assert main(["score", "--ref", str(ref), "--pred", str(pred), "--extractor", str(tmp_path / "none")]) == 6
