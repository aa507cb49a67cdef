"""Post-processing options for free-form answers, table-tested (empty, all stop words, shorter and longer than the
cut), and `score --what-if` / `score --postprocess` on the bundled free-form sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.cli import main
from evaluation.postprocess import PostprocessError, apply_postprocess, check_names, learn_length
from evaluation.whatif import what_if

ROOT = Path(__file__).resolve().parent.parent
QA = ROOT / "data" / "qa_sample.jsonl"
QA_PRED = ROOT / "data" / "qa_sample_predictions.jsonl"


@pytest.fixture(scope="module")
def stopwords(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("stop") / "stop.txt"
    path.write_text("的\n了\n是\n\n", encoding="utf-8")
    return str(path)


CASES = [
    # (options, answer, question, expected)
    (("strip_markdown",), "", "", ""),
    (("strip_markdown",), "## 建议\n- **多喝水**\n- `休息`\n1. 就医", "", "建议\n多喝水\n休息\n就医"),
    (("strip_markdown",), "[指南](http://x)推荐 2*3*4", "", "指南推荐 2*3*4"),
    (("strip_question",), "高血压要吃药吗？需要。", "高血压要吃药吗？", "需要。"),
    (("strip_question",), "需要。", "高血压要吃药吗？", "需要。"),
    (("strip_question",), "高血压要吃药吗？", "高血压要吃药吗？", ""),
    (("collapse_whitespace",), "  多 喝\n\n水  and  rest ", "", "多喝水 and rest"),
    (("collapse_whitespace",), "", "", ""),
    (("cut=4",), "多喝水", "", "多喝水"),  # shorter than the cut
    (("cut=4",), "多喝水多休息", "", "多喝水多"),  # longer
    (("fit=7",), "多喝水", "", "多喝水多喝水多"),  # padded by repeating itself
    (("fit=2",), "多喝水", "", "多喝"),
    (("fit=5",), "", "", ""),  # nothing to repeat
    (("collapse_whitespace", "cut=3"), " a  b c ", "", "a b"),  # in the order given
]


@pytest.mark.parametrize("options, answer, question, expected", CASES)
def test_options(options, answer, question, expected):
    assert apply_postprocess(answer, options, question) == expected


def test_stopwords(stopwords):
    assert apply_postprocess("高血压的治疗是长期的", (f"stopwords={stopwords}",)) == "高血压治疗长期"
    assert apply_postprocess("的了是的", (f"stopwords={stopwords}",)) == ""  # all stop words
    assert apply_postprocess("", (f"stopwords={stopwords}",)) == ""


@pytest.mark.parametrize("bad", ["nope", "cut", "cut=0", "fit=x", "strip_markdown=1", "stopwords=/no/such"])
def test_bad_options_are_named(bad):
    with pytest.raises(PostprocessError, match="post-processing option"):
        check_names((bad,))


def test_learnt_length_is_the_median_reference_length():
    assert learn_length(["ab", "abcd", "abcdefgh", ""]) == 4 and learn_length([]) == 1


def test_what_if_table_and_named_post_processing(tmp_path, capsys):
    rows = what_if(QA, QA_PRED, ("collapse_whitespace", "cut=5"))
    assert [r.name for r in rows] == ["none", "collapse_whitespace", "cut=5", "all: collapse_whitespace + cut=5"]
    assert rows[2].metrics["rouge-l"] < rows[0].metrics["rouge-l"]  # 5 characters cannot match long references
    assert main(["score", "--ref", str(QA), "--pred", str(QA_PRED), "--what-if"]) == 0
    out = capsys.readouterr().out
    assert "strip_markdown" in out and "fit=" in out and "all: " in out
    report = tmp_path / "r.json"
    assert main(["score", "--ref", str(QA), "--pred", str(QA_PRED), "--postprocess", "cut=5",
                 "--json", str(report)]) == 4  # the bundled sample has broken lines on purpose
    saved = json.loads(report.read_text())
    assert saved["conventions"]["postprocess"].endswith("cut=5")
    assert saved["rouge-l"] == pytest.approx(rows[2].metrics["rouge-l"], abs=1e-3)
    with pytest.raises(SystemExit):
        main(["score", "--ref", str(QA), "--pred", str(QA_PRED), "--postprocess", "cut=0"])
