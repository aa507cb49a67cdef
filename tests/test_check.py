"""`python -m evaluation check`: one broken submission per kind of problem, each named by line, id and field, with
the exit status `score` gives (0 valid, 3 test file malformed, 4 submission malformed, 5 does not match)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.check import check_submission, is_unlabelled
from evaluation.cli import main
from evaluation.data import DataFileError
from evaluation.submission import ReferenceMalformed

ROOT = Path(__file__).resolve().parent.parent
MC_COMPETITION = ROOT / "data" / "mc_sample_competition.jsonl"


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    """A test file (ids, an extra field, no answers) and a valid submission: every line echoed, answer "A"."""
    rows = [json.loads(line) for line in MC_COMPETITION.read_text(encoding="utf-8").splitlines()][:6]
    test = [{"id": f"t{i}", "input": r["input"], "lang": "zh"} for i, r in enumerate(rows)]
    return write(tmp_path / "test.jsonl", test), [{**t, "output": "A"} for t in test]


def edit_answer(rows, value):
    rows[2]["output"] = value


# kind, how the valid submission is broken, the line and field named, the exit status
CASES = [
    ("missing_prediction", lambda rows: rows.pop(2), None, "", 5),
    ("unknown_id", lambda rows: rows[2].update(id="zz"), 3, "id", 5),
    ("duplicate_id", lambda rows: rows.append(dict(rows[1])), 7, "id", 5),
    ("field_changed", lambda rows: rows[2].update(lang="en"), 3, "lang", 5),
    ("input_mismatch", lambda rows: rows[2].update(input="另一个问题"), 3, "input", 5),
    ("missing_answer", lambda rows: rows[2].pop("output"), 3, "output", 4),
    ("bad_answer_type", lambda rows: edit_answer(rows, ["A"]), 3, "output", 4),
    ("not_letters", lambda rows: edit_answer(rows, "我选A"), 3, "output", 4),
    ("letter_not_option", lambda rows: edit_answer(rows, "F"), 3, "output", 4),
    ("empty_output", lambda rows: edit_answer(rows, "  "), 3, "output", 0),
    ("replacement_char", lambda rows: edit_answer(rows, "A\ufffd"), 3, "output", 4),
]


@pytest.mark.parametrize("kind, breaks, line, field, status", CASES, ids=[c[0] for c in CASES])
def test_each_kind_of_problem(files, tmp_path, kind, breaks, line, field, status):
    test, rows = files
    assert check_submission(test, write(tmp_path / "ok.jsonl", rows)).exit_status == 0
    breaks(rows)
    report = check_submission(test, write(tmp_path / "sub.jsonl", rows))
    found = [p for p in report.problems if p.kind == kind]
    assert found, [p.kind for p in report.problems]
    assert (found[0].line, found[0].field) == (line, field)
    assert report.exit_status == status
    assert main(["check", "--test", str(test), "--pred", str(tmp_path / "sub.jsonl")]) == status


def test_order_alignment_extra_and_duplicate_rows(files, tmp_path):
    test, rows = files
    no_ids = [{k: v for k, v in r.items() if k != "id"} for r in rows]
    write(test, [{k: v for k, v in r.items() if k != "output"} for r in no_ids])
    report = check_submission(test, write(tmp_path / "sub.jsonl", no_ids + [no_ids[0]]))
    assert report.alignment == "order" and [(p.kind, p.line) for p in report.problems] == [("extra_row", 7)]
    assert report.exit_status == 5
    duplicated = no_ids[:2] + [no_ids[1]] + no_ids[3:]
    kinds = {p.kind for p in check_submission(test, write(tmp_path / "dup.jsonl", duplicated)).problems}
    assert {"duplicate_row", "input_mismatch"} <= kinds


def test_encoding_and_broken_lines(files, tmp_path):
    test, rows = files
    gbk = tmp_path / "gbk.jsonl"
    gbk.write_bytes("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("gb18030"))
    with pytest.raises(DataFileError) as err:
        check_submission(test, gbk)
    assert err.value.problems[0].kind == "encoding"
    assert main(["check", "--test", str(test), "--pred", str(gbk)]) == 4
    broken = tmp_path / "broken.jsonl"
    broken.write_text(write(tmp_path / "x.jsonl", rows).read_text().replace('"output": "A"}', '"output": "A"',
                                                                           1), encoding="utf-8")
    report = check_submission(test, broken)
    assert report.exit_status == 4 and report.problems[0].line == 1 and report.problems[0].kind == "bad_json"


def test_a_malformed_test_file_and_unlabelled_detection(files, tmp_path):
    test, rows = files
    assert is_unlabelled(test) and not is_unlabelled(MC_COMPETITION)
    bad = write(tmp_path / "bad.jsonl", [{"id": "a", "input": 3}])
    with pytest.raises(ReferenceMalformed):
        check_submission(bad, write(tmp_path / "sub.jsonl", rows))
    assert main(["check", "--test", str(bad), "--pred", str(tmp_path / "sub.jsonl")]) == 3
    # score with an unlabelled reference checks instead of failing on the missing answers
    assert main(["score", "--ref", str(test), "--pred", str(tmp_path / "sub.jsonl")]) == 0
    rows[0]["id"] = "zz"
    assert main(["score", "--ref", str(test), "--pred", str(write(tmp_path / "sub.jsonl", rows))]) == 5


def test_csv_submission_and_json_report(tmp_path):
    test, pred = tmp_path / "test.csv", tmp_path / "sub.csv"
    test.write_text('id,input\n1,"首选药物是\nA. 甲\nB. 乙"\n2,"首选检查是\nA. 丙\nB. 丁"\n', encoding="utf-8")
    pred.write_text('id,input,output\n1,"首选药物是\nA. 甲\nB. 乙",B\n2,"首选检查是\nA. 丙\nB. 丁",A\n',
                    encoding="utf-8")
    report = check_submission(test, pred)
    assert (report.task, report.alignment, report.exit_status, report.problems) == ("mc", "id", 0, [])
    out = tmp_path / "check.json"
    pred.write_text(pred.read_text(encoding="utf-8").replace(",A\n", ",AB C\n"), encoding="utf-8")
    assert main(["check", "--test", str(test), "--pred", str(pred), "--json", str(out)]) == 4
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert [(p["line"], p["id"], p["kind"], p["field"]) for p in saved["problems"]] == [
        (5, "2", "letter_not_option", "output")]  # the line its CSV record starts on
