"""`python -m evaluation score --ref VAL --pred PRED --what-if`: ROUGE-1/2/L and BLEU-4 of a free-form submission
with each post-processing option (evaluation/postprocess.py) off and on, so that a participant picks by measurement
before post-processing the test set's answers the same way (`predict --postprocess ...`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evaluation.metrics import QA_METRICS, mean_scores, qa_item_scores
from evaluation.postprocess import apply_postprocess, check_names, learn_length
from evaluation.submission import align, load_reference, read_predictions


@dataclass
class WhatIfRow:
    name: str  # "none", one option, or "all: a + b"
    options: tuple[str, ...]
    metrics: dict[str, float]


def default_options(references: list[str], stopwords: str | None = None) -> tuple[str, ...]:
    """Every option, with the lengths learnt from the validation set's references."""
    n = learn_length(references)
    names = ("strip_markdown", "strip_question", "collapse_whitespace", f"cut={n}", f"fit={n}")
    return names + ((f"stopwords={stopwords}",) if stopwords else ())


def what_if(reference_path: str | Path, predictions_path: str | Path, options: tuple[str, ...] = ()) -> list:
    """Rows: no post-processing, each option alone, then all of them in the order given. Raises
    ReferenceMalformed / DataFileError as `score` does, ValueError for a multiple-choice reference."""
    reference = load_reference(reference_path, "qa")
    predictions, _ = read_predictions(predictions_path)
    aligned = align(reference, predictions).predictions
    refs = [item.output for item in reference.items]
    options = tuple(options) or default_options(refs)
    check_names(options)
    answers = [p.output if p else "" for p in aligned]
    questions = [item.input for item in reference.items]
    variants = [("none", ())] + [(name, (name,)) for name in options]
    if len(options) > 1:
        variants.append(("all: " + " + ".join(options), options))
    rows = []
    for name, chosen in variants:
        texts = [apply_postprocess(a, chosen, q) for a, q in zip(answers, questions)]
        rows.append(WhatIfRow(name, chosen, mean_scores(qa_item_scores(texts, refs))))
    return rows


def render_what_if(rows: list[WhatIfRow]) -> str:
    from evaluation.report import table

    base = rows[0].metrics
    body = [[row.name, *(f"{row.metrics[m]:.2f}" + ("" if row is rows[0] else f" ({row.metrics[m] - base[m]:+.2f})")
                         for m in QA_METRICS)] for row in rows]
    lines = ["What if: the predictions post-processed before scoring (change against none in brackets)"]
    return "\n".join(lines + table(["post-processing", *QA_METRICS], body))
