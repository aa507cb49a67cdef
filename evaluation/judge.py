"""An optional judge for the answers the rules cannot read (`score --extractor MODEL`): a model is shown the
question, its options and the answer, and asked which letters the answer chooses. Only answers the rule-based
extraction left unparsed are judged (never an empty one), so the default stays rule-based and deterministic, and
the report names the judge and how many answers it decided."""

from __future__ import annotations

import re
import unicodedata

JUDGE_PROMPT = ("下面是一道选择题和对它的一个回答。这个回答选择了哪个（些）选项？只输出选项字母（如 B 或 BD）；"
                "如果回答没有明确选择任何选项，只输出 NONE。\n\n题目：{question}\n{options}\n\n回答：{answer}")


def judge_reply_letters(reply: str, options) -> str | None:
    """The judge's reply read strictly: letters among the options and nothing else, else None."""
    text = re.sub(r"[\s,，、.。]", "", unicodedata.normalize("NFKC", reply)).upper()
    if not re.fullmatch(r"[A-F]{1,6}", text) or not set(text) <= set(options):
        return None
    return "".join(sorted(set(text)))


def judge_unparsed(report, registry, batch_size: int = 8) -> int:
    """Multiple-choice rows of a ScoreReport left unparsed, decided by the judge model in `registry` (greedy,
    a few tokens); the report's metrics, breakdown and score are recomputed. Returns how many were decided."""
    from models.settings import GenerationSettings
    from evaluation.tasks import get_task

    rows = [r for r in report.items if r.get("status") == "unparsed" and r["prediction"].strip()]
    task = get_task(report.task)
    if not task.answers_are_letters or not rows:  # the judge reads letters among an item's options
        return 0
    prompts = [[{"role": "user", "content": JUDGE_PROMPT.format(
        question=r["question"], options="\n".join(f"{k}. {v}" for k, v in r["options"].items()),
        answer=r["prediction"])}] for r in rows]
    replies = registry.generate(prompts, settings=GenerationSettings(max_new_tokens=8), batch_size=batch_size)
    decided = 0
    for row, reply in zip(rows, replies):
        letters = judge_reply_letters(reply, row["options"])
        if letters is not None:
            decided += 1
            row.update(extracted=letters, correct=letters == row["answer"], unparsed=False, status="judged")
    report.metrics, report.breakdown = task.summarise(report.items)
    report.score = sum(w * report.metrics[k] for k, w in report.weights.items()) / sum(report.weights.values())
    return decided
