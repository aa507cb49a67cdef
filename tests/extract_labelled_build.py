"""Builds tests/extract_labelled.jsonl: model outputs written the way real chat models answer multiple-choice
exam questions, each labelled with the letters it chooses (null: it chooses none). The questions and options are
public exam items: MedQA mainland (MIT, Jin et al. 2020, sample via openmedlab/PULSE-EVAL) and CMExam validation
(Apache-2.0, research use; Liu et al. 2023, multi-answer items only). The written file is self-contained: the test
reads only it. Run again only to regenerate: `python tests/extract_labelled_build.py ../shared/data/public`.

The chosen letter is the key 70% of the time and another option otherwise (models are wrong too), so that a reader
cannot score well by knowing the key. Seeded: the same input gives the same file.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "extract_labelled.jsonl"
# Explanations full of capitals that are not answers: labs, imaging, genes, staging, vitamins.
ABBREVIATIONS = ["CT", "MRI", "HBV", "HBsAg", "ALT", "AST", "ECG", "DNA", "RNA", "IgA", "IgM", "CRP", "PCT", "BNP",
                 "ⅡA期", "ⅢB期", "维生素B12", "维生素D", "维生素A", "CD4+T细胞", "HLA-B27", "BRCA1", "EGFR", "ACEI",
                 "ARB", "NSAIDs", "COPD", "DIC", "ARDS", "PE", "B超", "X线", "HbA1c", "TSH", "FT4", "Rh(D)", "ABO"]


def explanation(rng: random.Random, options: dict, chosen: str) -> str:
    terms = rng.sample(ABBREVIATIONS, 3)
    text = options[chosen]
    return rng.choice([
        f"患者需结合{terms[0]}及{terms[1]}检查结果综合判断，{terms[2]}对诊断亦有帮助。本题考查要点是{text}。",
        f"根据临床表现，应完善{terms[0]}、{terms[1]}等检查；若{terms[2]}异常提示病情较重。{text}符合题意。",
        f"{terms[0]}和{terms[1]}均为常用检查手段，{terms[2]}可辅助鉴别诊断，结合题干，{text}最符合。",
    ])


def outputs(rng: random.Random, item: dict, chosen: str) -> list[tuple[str, str, str | None]]:
    """(kind, output, expected letters) written for one item."""
    o = item["options"]
    text = o[chosen] if len(chosen) == 1 else "、".join(o[c] for c in chosen)
    other = rng.choice([k for k in o if k not in chosen])
    spaced = " ".join(chosen)
    expl = explanation(rng, o, chosen[0])
    single = [
        ("short", rng.choice([chosen, f"{chosen}.", f"{chosen}。", f"({chosen})", f"**{chosen}**"]), chosen),
        ("label_colon", rng.choice([f"答案：{chosen}", f"正确答案: {chosen}", f"Answer: {chosen}", f"【答案】{chosen}",
                                    f"选项：{chosen}", f"答：{chosen}"]), chosen),
        ("letter_and_text", rng.choice([f"{chosen}. {text}", f"{chosen}：{text}", f"答案是{chosen}（{text}）。",
                                        f"{chosen}、{text}"]), chosen),
        ("long", f"{expl}\n\n综上所述，答案为{chosen}。", chosen),
        ("long_abbrev_last", f"答案：{chosen}\n\n解析：{expl}", chosen),
        ("cot", f"让我们逐步分析。\n1. 题干关键信息需要仔细阅读。\n2. 选项{other}：{o[other]}，与题意不符，排除。\n"
                f"3. 选项{chosen[0]}：{o[chosen[0]]}，{expl}\n因此，正确答案是{chosen}。", chosen),
        ("english", rng.choice([f"The answer is {chosen}.", f"The correct answer is ({chosen}) {text}.",
                                f"Answer: {chosen}. {text} is the best choice here.",
                                f"I would choose {chosen}, because {text} fits the clinical picture best."]), chosen),
        ("text_only", rng.choice([f"{text}", f"答案是{text}。", f"首选的处理是{text}，{expl}",
                                  f"本题应选{text}。", f"最可能的是{text}。"]), chosen),
        ("refusal", rng.choice(["抱歉，我无法回答这个问题，请咨询专业医生。", "作为一个AI语言模型，我不能提供医疗诊断。",
                                "I'm sorry, but I cannot answer medical exam questions.", "无法作答。"]), None),
        ("hedge", rng.choice([f"可能是{chosen[0]}，也可能是{other}，无法确定。", f"{chosen[0]}或{other}",
                              f"这道题我拿不准，{chosen[0]}和{other}都有可能。", "无法判断，需要更多信息。",
                              f"It could be {chosen[0]} or {other}; I am not sure."]), None),
    ]
    # Kinds added after the first measurement, not tuned for: a check that the rules are not fitted to the above.
    options_block = "\n".join(f"{k}. {v}" for k, v in o.items())
    extra = [
        ("text_contrast", f"不是{o[other]}，而是{text}。", chosen),
        ("english_text", f"The most likely answer is {text}.", chosen),
        ("cot_text", f"{o[other]}不符合题意，可以排除。{expl}所以选{text}。", chosen),
        ("only_wrong_verdict", f"{other}项：{o[other]}，错误。", None),
        ("question_echo", f"题目：{item['question']}\n{options_block}\n\n答案：{chosen}", chosen),
    ]
    if len(chosen) > 1:
        return [("multi_spaces", spaced, chosen), ("multi_label_spaces", f"答案：{spaced}", chosen),
                ("multi_dunhao", "、".join(chosen), chosen), ("multi_text", f"正确的是{text}。", chosen),
                ("multi_long", f"{expl}\n故本题选{chosen}。", chosen)]
    return rng.sample(single, 4) + [rng.choice(extra)]


def main(public: Path) -> None:
    rng = random.Random(20261130)
    medqa_file = public / "medqa_mainland" / "medqa_mainland_mc.jsonl"
    medqa = [json.loads(line) for line in medqa_file.open(encoding="utf-8")]
    cmexam = [json.loads(line) for line in (public / "cmexam" / "cmexam_mc.jsonl").open(encoding="utf-8")]
    multi = [r for r in cmexam if 1 < len(r["answer"]) < len(r["options"])][:20]
    rows = []
    for item in medqa + multi:
        key = item["answer"]
        chosen = key if len(key) > 1 or rng.random() < 0.7 else rng.choice(list(item["options"]))
        for kind, output, expected in outputs(rng, item, chosen):
            rows.append({"id": item["id"], "kind": kind, "question": item["question"], "options": item["options"],
                         "output": output, "expected": expected})
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} labelled outputs in {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data" / "public"))
