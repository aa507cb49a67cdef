"""Metrics: golden cases, the empty rules, multiple-choice accuracy, and fast == plain on every public set."""
import json
import random

import pytest
from rouge_chinese import Rouge
from rouge_chinese.rouge_score import _len_lcs

from evaluation.metrics import (
    CONVENTIONS,
    QA_METRICS,
    mc_is_correct,
    mean_scores,
    plain_qa_item_scores,
    qa_item_scores,
)

TOL = 1e-9


def _f(p: float, r: float) -> float:
    # rouge-chinese's F, with its 1e-8 in the denominator, x100
    return 2.0 * ((p * r) / (p + r + 1e-8)) * 100


def _assert_same(fast, plain, label=""):
    assert len(fast) == len(plain)
    for i, (a, b) in enumerate(zip(fast, plain)):
        assert set(a) == set(QA_METRICS), label
        for k in QA_METRICS:
            assert abs(a[k] - b[k]) <= TOL, f"{label} pair {i} {k}: fast {a[k]!r} plain {b[k]!r}"


# (case, prediction, reference, expected values or None when only fast == plain is checked)
GOLDEN = [
    ("identical", "高血压患者应低盐饮食，规律服药，定期复查血压。", "高血压患者应低盐饮食，规律服药，定期复查血压。",
     {"rouge-1": _f(1, 1), "rouge-2": _f(1, 1), "rouge-l": _f(1, 1), "bleu-4": 100.0}),
    ("disjoint", "头痛", "腹泻", {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0, "bleu-4": 0.0}),
    # English words separated by spaces: jieba keeps each letter run as one token, so the counts are by hand.
    ("one word replaced", "a b c d", "a b x d",
     {"rouge-1": _f(3 / 4, 3 / 4), "rouge-2": _f(1 / 3, 1 / 3), "rouge-l": _f(3 / 4, 3 / 4), "bleu-4": None}),
    ("repeats count once in rouge-n", "a a a b", "a b",
     {"rouge-1": _f(1, 1), "rouge-2": _f(1 / 2, 1), "rouge-l": _f(2 / 4, 2 / 2), "bleu-4": None}),
    ("short identical: no 2..4-gram, smoothed", "好", "好",
     {"rouge-1": _f(1, 1), "rouge-2": 0.0, "rouge-l": _f(1, 1), "bleu-4": None}),
    ("punctuation only", "。。。！", "！？", None),
    ("punctuation only identical", "……", "……", None),
    ("multi-sentence", "您好。根据描述，考虑是感冒！建议多喝水？注意休息。", "感冒了。多喝水！注意休息……好好睡觉", None),
    ("blank lines become '' tokens", "第一，多喝水。\n\n第二，多休息。\n \n第三", "第一，多喝水。\n第二，多休息。", None),
    ("windows newlines and tabs", "建议：\r\n1.\t多喝水\r\n2.\t多休息", "建议：\n1. 多喝水\n2. 多休息", None),
    ("english and chinese mixed", "可以服用Tylenol（对乙酰氨基酚）500mg，COVID-19期间注意", "对乙酰氨基酚 Tylenol 每次 500 mg", None),
    ("numbers", "每天3次，每次2片，连用7天，体温38.5℃以上再服", "每天2次，每次3片，连用5~7天", None),
    ("six dots and quotes", "他说“我很好。”然后......又咳嗽了？’", "“我很好。”......咳嗽", None),
    ("prediction longer than reference", "多喝水多休息，饮食清淡，避免熬夜，必要时就医。" * 3, "多喝水多休息。", None),
]


@pytest.mark.parametrize("case,pred,ref,expected", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden(case, pred, ref, expected):
    fast = qa_item_scores([pred], [ref])
    plain = plain_qa_item_scores([pred], [ref])
    _assert_same(fast, plain, case)
    for k, value in (expected or {}).items():
        if value is not None:
            assert fast[0][k] == pytest.approx(value, abs=TOL), k


def test_identical_scores_are_100_up_to_rouge_epsilon():
    text = "糖尿病患者应控制饮食，适量运动，遵医嘱用药。"
    (item,) = qa_item_scores([text], [text])
    # rouge-chinese's F has +1e-8 in its denominator, so identical text gives 99.9999995, not 100
    assert all(item[k] == pytest.approx(100, abs=1e-6) for k in QA_METRICS)


@pytest.mark.parametrize("empty", ["", " ", "\n\n", "\t \u3000\r\n"])
def test_empty_prediction_scores_zero_and_stays_in_denominator(empty):
    ref = "多喝水，注意休息。"
    for scorer in (qa_item_scores, plain_qa_item_scores):
        items = scorer([empty, ref], [ref, ref])
        assert items[0] == {k: 0.0 for k in QA_METRICS}
        means = mean_scores(items)
        assert means["rouge-1"] == pytest.approx(items[1]["rouge-1"] / 2)
        assert means["bleu-4"] == pytest.approx(50.0)


@pytest.mark.parametrize("empty", ["", "  ", "\n"])
def test_whitespace_only_is_exactly_what_rouge_chinese_rejects(empty):
    # The empty rule must cover exactly the texts rouge-chinese cannot score, no more and no less.
    with pytest.raises(ValueError):
        Rouge().get_scores(empty, "多 喝水")
    Rouge().get_scores("。", "多 喝水")  # punctuation only is scored normally


@pytest.mark.parametrize("scorer", [qa_item_scores, plain_qa_item_scores])
@pytest.mark.parametrize("empty_ref", ["", " \n "])
def test_empty_reference_is_an_error_naming_its_index(scorer, empty_ref):
    with pytest.raises(ValueError, match=r"references\[1\] is empty"):
        scorer(["好", "好"], ["好", empty_ref])


@pytest.mark.parametrize("scorer", [qa_item_scores, plain_qa_item_scores])
def test_bad_input(scorer):
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        scorer(["a", "b"], ["a"])
    with pytest.raises(TypeError, match=r"predictions\[0\] is NoneType"):
        scorer([None], ["a"])
    assert scorer([], []) == []


def test_lcs_bit_parallel_matches_rouge_dp_on_random_sequences():
    # Small alphabets make long, ambiguous LCS paths; lengths cross the 64-bit word boundary.
    rng = random.Random(7)
    preds, refs = [], []
    for _ in range(150):
        alphabet = "abcdefgh"[: rng.randint(1, 8)]
        preds.append(" ".join(rng.choice(alphabet) for _ in range(rng.randint(1, 90))))
        refs.append(" ".join(rng.choice(alphabet) for _ in range(rng.randint(1, 90))))
    _assert_same(qa_item_scores(preds, refs), plain_qa_item_scores(preds, refs), "random")
    assert _len_lcs(list("abcbdab"), list("bdcaba")) == 4  # the DP we replace, on the textbook case


def test_repeated_texts_are_scored_once_but_per_pair():
    texts = ["多喝水。", "多休息，多喝水。", "多喝水。"]
    refs = ["多休息，多喝水。", "多喝水。", "多喝水。"]
    fast = qa_item_scores(texts, refs)
    _assert_same(fast, plain_qa_item_scores(texts, refs))
    assert fast[0] != fast[2]


def test_mean_scores():
    assert mean_scores([{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]) == {"a": 2.0, "b": 3.0}
    assert mean_scores([{"accuracy": 1.0}, {"accuracy": 0.0}, {"accuracy": 0.0}]) == {"accuracy": pytest.approx(1 / 3)}
    with pytest.raises(ValueError, match="no scored items"):
        mean_scores([])
    with pytest.raises(ValueError, match="item 1 has metrics"):
        mean_scores([{"a": 1.0}, {"b": 1.0}])


@pytest.mark.parametrize("predicted,answer,correct", [
    ("B", "B", True),
    ("DB", "BD", True),          # order does not matter
    ("B,D", "BD", True),         # separators do not matter
    ("b", "B", True),
    ("B", "BD", False),          # subset
    ("BCD", "BD", False),        # superset
    ("C", "B", False),
    ("", "B", False),
    (None, "B", False),          # unparsed is wrong
])
def test_mc_is_correct(predicted, answer, correct):
    assert mc_is_correct(predicted, answer) is correct


def test_mc_answer_without_letter_is_an_error():
    with pytest.raises(ValueError, match="no option letter"):
        mc_is_correct("A", "")


def test_conventions_cover_every_metric():
    assert set(CONVENTIONS) == {*QA_METRICS, "accuracy"}
    assert "jieba" in CONVENTIONS["rouge-l"] and "method 3" in CONVENTIONS["bleu-4"]


def _near_copy(text: str, rng: random.Random) -> str:
    kept = [rng.choice(text) if rng.random() < 0.05 else ch for ch in text if rng.random() >= 0.05]
    return "".join(kept) or text


def test_fast_equals_plain_on_every_public_free_form_set(shared_public):
    """Fast path on each whole set; the plain loop on a seeded subset plus each set's longest texts."""
    paths = sorted(shared_public.glob("*/*_qa.jsonl"))
    assert paths, f"no *_qa.jsonl under {shared_public}"
    for path in paths:
        with path.open(encoding="utf-8") as f:
            outputs = [json.loads(line)["output"] for line in f if line.strip()]
        rng = random.Random(f"metrics-{path.name}")
        refs = list(outputs)
        rng.shuffle(refs)
        fast = qa_item_scores(outputs, refs)

        longest = set()
        for texts in (outputs, refs):  # the longest texts, once as prediction and once as reference
            longest.update(sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)[:5])
        picked = sorted(set(rng.sample(range(len(outputs)), min(100, len(outputs)))) | longest)
        plain = plain_qa_item_scores([outputs[i] for i in picked], [refs[i] for i in picked])
        _assert_same([fast[i] for i in picked], plain, f"{path.name} shuffled")

        # Near copies: long LCS paths and scores near 100, the other end of the range.
        sample = rng.sample(outputs, min(30, len(outputs)))
        copies = [_near_copy(t, rng) for t in sample]
        _assert_same(qa_item_scores(copies, sample), plain_qa_item_scores(copies, sample), f"{path.name} near-copy")
