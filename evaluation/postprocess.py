"""Named post-processing of free-form answers, applied before an answer is written or scored.

Each option is a name, some with one value after "=": `strip_markdown`, `strip_question`, `collapse_whitespace`,
`cut=N` (at most N characters), `fit=N` (cut to N characters, or pad a shorter answer to N by repeating it: BLEU's
brevity penalty and ROUGE's recall reward answers of the reference's length; N is usually learnt from a validation
set, see `learn_length`), `stopwords=FILE` (jieba words found in FILE, one word a line, removed). They apply in the
order given, and reports name them, so a score always says what was done to the answers.
"""

from __future__ import annotations

import re
import statistics
from functools import lru_cache
from pathlib import Path

SIMPLE = ("strip_markdown", "strip_question", "collapse_whitespace")
WITH_VALUE = ("cut", "fit", "stopwords")
NAMES = SIMPLE + WITH_VALUE

_FENCE = re.compile(r"^\s*```[^\n]*$", re.M)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.M)
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)、])\s+", re.M)
# Bold, italic and code marks around words; not the * of "2*3*4", which a word character touches outside.
_EMPHASIS = re.compile(r"(?<![\w*`])(\*\*|__|\*|`)(?=\S)([^\n]+?)(?<=\S)\1(?![\w*`])")
_LINK = re.compile(r"\[([^\]\n]*)\]\([^)\n]*\)")
_RULE = re.compile(r"^\s*(?:[-*_]\s*){3,}$", re.M)
_SPACE = re.compile(r"\s+")
_CJK_GAP = re.compile(r"(?<=[\u3000-\u9fff\uff00-\uffef]) (?=[\u3000-\u9fff\uff00-\uffef])")


class PostprocessError(ValueError):
    """A post-processing option that is unknown or has a bad value; the message names it."""


def parse(name: str) -> tuple[str, str | None]:
    key, sep, value = name.partition("=")
    key = key.strip()
    if key not in NAMES:
        raise PostprocessError(f"unknown post-processing option {name!r} (known: {', '.join(SIMPLE)}, cut=N, "
                               "fit=N, stopwords=FILE)")
    if key in SIMPLE and sep:
        raise PostprocessError(f"post-processing option {key!r} takes no value, got {name!r}")
    if key in ("cut", "fit") and not (value.strip().isdigit() and int(value) >= 1):
        raise PostprocessError(f"post-processing option {name!r}: {key}=N needs a whole number N of at least 1")
    if key == "stopwords" and not Path(value).is_file():
        raise PostprocessError(f"post-processing option {name!r}: no such file {value!r} (one stop word a line)")
    return key, value if sep else None


def check_names(names) -> None:
    for name in names:
        parse(name)


def strip_markdown(text: str) -> str:
    text = _FENCE.sub("", text)
    text = _RULE.sub("", text)
    text = _HEADING.sub("", text)
    text = _BULLET.sub("", text)
    text = _LINK.sub(r"\1", text)
    return _EMPHASIS.sub(r"\2", text)


def strip_question(text: str, question: str) -> str:
    """An answer that starts by repeating its question (models often do) loses the repetition."""
    question = question.strip()
    stripped = text.lstrip()
    if question and stripped.startswith(question):
        return stripped[len(question):].lstrip(" \n:：。，,?？")
    return text


def collapse_whitespace(text: str) -> str:
    """Runs of spaces and line breaks become one space; a space between two Chinese characters goes (it only
    changes jieba's segmentation)."""
    return _CJK_GAP.sub("", _SPACE.sub(" ", text).strip())


def fit(text: str, n: int) -> str:
    if not text:
        return text  # nothing to repeat: an empty answer stays empty (and scores 0)
    while len(text) < n:
        text += text[: n - len(text)]
    return text[:n]


@lru_cache(maxsize=8)
def _stopwords(path: str) -> frozenset[str]:
    return frozenset(w.strip() for w in Path(path).read_text(encoding="utf-8").splitlines() if w.strip())


def remove_stopwords(text: str, path: str) -> str:
    import jieba

    words = _stopwords(path)
    return "".join(w for w in jieba.lcut(text) if w.strip() not in words)


def apply_postprocess(text: str, names, question: str = "") -> str:
    """`text` after each named option in turn."""
    for name in names:
        key, value = parse(name)
        if key == "strip_markdown":
            text = strip_markdown(text)
        elif key == "strip_question":
            text = strip_question(text, question)
        elif key == "collapse_whitespace":
            text = collapse_whitespace(text)
        elif key == "cut":
            text = text[: int(value)]
        elif key == "fit":
            text = fit(text, int(value))
        else:
            text = remove_stopwords(text, value)
    return text


def learn_length(references) -> int:
    """The median length of the reference answers of a validation set: the N of `fit=N`."""
    lengths = [len(r) for r in references if r]
    return max(1, int(statistics.median(lengths))) if lengths else 1
