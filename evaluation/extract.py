"""Read the option letters a model chose out of its free-text answer to a multiple-choice question.

The text is NFKC-normalised first, so full-width letters and punctuation (Ｂ，（Ｂ）：) arrive as ASCII.
Readings are tried from the most explicit to the least; the first that finds a letter decides:

1. answer statements ("答案：B", "正确答案为B", "故选B", "The answer is B"). The last one wins, because a
   chain-of-thought answer discusses several letters before it concludes;
2. verdicts on options ("选项B正确", "B、D项正确"), all of them together, since each names a correct option;
3. a reply that starts with its answer ("B", "(B)", "**B**", "B. 带状疱疹", "BD");
4. softer conclusions ("综上，B", "最可能的是B。");
5. one letter written beside its own option's text ("选项D：带状疱疹", "带状疱疹（D）");
6. the text of one option written out ("带状疱疹").

A letter counts only where it stands alone: letters glued to other letters or digits (DNA, HBV, IgE, B12,
CD4), letters that begin a medical term (B超, A型血, 维生素C) and letters inside an option's own text where the
reply quotes it ("A声级", "A+B+C") are never answers. A hedge ("可能是B也可能是C") or a refusal gives None, and
so does a chosen letter that is not among the item's options (unless the reply is exactly an option's text).

Reading is linear in the reply's length and fast on long replies (2,000,000 characters in well under a second of
typical text; tests/test_extract_long.py): no regex backtracks over a run of whitespace, places that cannot start a
cue are skipped by the regex engine, the readings where the last occurrence wins read from the end, and each reading
looks at no more than MAX_CANDIDATES places. The scorer also cuts answers to --max-answer-chars first.
"""
from __future__ import annotations

import difflib
import itertools
import re
import unicodedata
from collections.abc import Mapping
from typing import NamedTuple

_UNIVERSE = frozenset("ABCDEF")
# The most candidate places (cues followed by a letter, verdicts) one reading looks at. Real replies have a few
# dozen; the bound keeps a reply made of millions of cues (an attack, or a generation stuck in a loop) from
# costing seconds. The statement and conclusion readings look at the last ones, the verdicts at the first.
MAX_CANDIDATES = 2_000

# --- Letters ---------------------------------------------------------------------------------------------
# A run of ASCII letters glued neither to letters or digits (DNA, HBV, IgE, B12, CD4+) nor to a hyphen
# (D-二聚体, HLA-B27). Runs are read whole, so "BD" is two letters but "CT" is no letter at all.
_RUN = r"(?<![A-Za-z0-9+\-])(?P<run>[A-Za-z]{1,6})(?![A-Za-z0-9+\-])"
_RUN_UPPER = r"(?<![A-Za-z0-9+\-])[A-F]{1,6}(?![A-Za-z0-9+\-])"
# Between a cue and its letter: spaces, newlines (答案：\nB), brackets ("【答案】B"), markdown ("**答案**：B"), quotes.
_FIRST_RUN = re.compile(r"[\s(\[【「{*\"“‘'】\]):]*" + _RUN)
# Joins the letters of a multi-answer: B、D / B,D / B和D / B and D / "B D". Not a newline: the line after an
# answer may start an option-by-option explanation. "或" is not a joiner but a hedge (see _HEDGE).
# 、/和/与 bind a list ("A、B、C都是…" is one subject); a comma or space may end the answer ("答案是B，C项错误").
_NEXT_RUN = re.compile(r"[ \t]*+(?:(?P<list>[、&]|以及|和|与|及|\band\b)|[,/;])?[ \t*]*+" + _RUN)
# A letter may also be followed by another, different, lone letter after spaces ("A B D": a multi-answer).
# What may follow a letter that closes an answer, e.g. the D of "B、D" or the BD of "答案：BD两项".
# Written so that no two quantifiers trade the same whitespace back and forth (that took seconds per letter on a
# long gap): a "*" right after the spaces, or a newline in the whitespace, ends the answer, as the terminator class
# matched after giving back whitespace did.
_TAIL = re.compile(r"(?<=([A-F]))(?=[ \t]++(?!\1)[A-F](?![A-Za-z0-9+\-]))"
                   r"|[ \t]*+(?:\*|(?:选项|项|两项|三项|四项)?(?:[^\S\n]*+\n|\s*+(?:也|都|均)?"
                   r"(?:$|[、,/&;:.。!?()\[\]【】「」{}<*\"”'’\n]|和|与|及|或|正确|是正确|对的|\b(?:and|or|is|are)\b)))")
# A letter that begins a medical term is not an answer: B超, A型血, B族链球菌, A组链球菌, C反应蛋白, E抗原,
# CD分子, ACE抑制剂, 维生素C, 辅酶A.
_TERM_AFTER = re.compile(r"\s?(?:型|超|族|组|群|类|级|波|肝|细胞|淋巴|抗原|抗体|受体|因子|蛋白|反应|链|二聚体"
                         r"|分子|缺乏|抑制剂|阻滞剂|中毒)")
_TERM_BEFORE = re.compile(r"(?:维生素|维他命|蛋白|辅酶|因子|血型(?:为|是)?)\s?$")
# After a cue, a letter that starts a clause about itself is discussed, not chosen: "答案：\nA项错误，…".
_CLAUSE_AFTER = re.compile(r"\s*+(?:选项|项)?\s*+(?:错|不|也|是|虽|看似|可能|的|中|描述|叙述|说法|正确|对|吗|呢)")
# 不选A, 不能选A, 而不是C: a negation right before a cue, with at most one character between.
_NEGATION = re.compile(r"[不非没未别勿][\u4e00-\u9fff]?$")

# --- 1. Answer statements; the letters must follow the cue directly -------------------------------------
_ANSWER_CUE = re.compile(
    r"(?:正确|最终|最佳|标准|参考)?答案(?:应该|应当|应|可能|就|也)?(?:是|为|选择?)?(?:选项|项)?\s*:?"
    r"|(?m:^)[ \t*#>]*(?:回答|解答|答)\s*:"              # 答：B opening a line
    r"|(?m:^)[ \t*#>]*选项[ \t]*:[ \t]*(?=[A-Za-z])"       # 选项：B, a label; not 选项：\nA. … (an echo)
    r"|(?:应该|应当|应|故|所以|因此|本题|我)?选(?:择|定)?\s*:?"  # 选B, 故选B; 选项B is a mention (no letter right after 选)
    r"|(?:正确|最佳|最合适|最恰当)的?选项(?:是|为)?\s*:?"
    r"|(?:不?正确|错误|最合适|最佳|最恰当|最可能)的[\u4e00-\u9fff]{0,4}?(?:是|为)\s*:?"  # 最可能的诊断是B
    r"|(?i:\b(?:correct\s+|final\s+|best\s+)?answer\s*(?:is|would\s+be|should\s+be)?\s*:?\s*(?:option\s*)?"
    r"|\b(?:correct|best|right)\s+(?:option|choice)\s*(?:is)?\s*:?"
    r"|\b(?:choose|select|pick)\s+(?:option\s*)?)"
    r"|<answer>|\\boxed\{"                            # <answer>B</answer> and \boxed{B} of reasoning models
)
# A cue can start an answer only where a letter follows it, after what _FIRST_RUN skips.
_BEFORE_LETTER = r"[\s(\[【「{*\"“‘'】\]):]*+[A-Za-z]"
# The leading lookahead names every character a cue can start with (or a line start): the regex engine then
# skips the other positions at once instead of trying each alternative there (6x faster on long Chinese text).
# The cue is atomic, so the lookahead never picks a different (shorter) cue than _ANSWER_CUE itself would.
_ANSWER_CUE_BEFORE_LETTER = re.compile(
    r"(?=[正最标参答回解应故所因本我选不错<\\]|(?m:^)|\b(?i:correct|final|best|answer|right|choose|select|pick))"
    f"(?>{_ANSWER_CUE.pattern})(?={_BEFORE_LETTER})")
# Sentence ends; not "." since "B. 带状疱疹" is one answer.
_SENTENCE_BREAK = re.compile(r"[。!?\n]")
# An alternative offered after the answer, in any later sentence: "答案可能是B。也可能是C。"
_LATER_ALTERNATIVE = re.compile(r"(?:也可能|也有可能)(?:是|选)?\s*[A-F](?![A-Za-z0-9])")

# --- 2. Verdicts on options --------------------------------------------------------------------------------
# "B正确", "选项B正确", "B、D项是正确的", "C，正确", "B为正确答案", "B is correct"; not "A项正确的说法是…",
# which only introduces a statement.
_VERDICT = re.compile(
    r"\s*+(?:选项|项)?(?:的)?(?:说法|描述|叙述)?\s*+[:,]?\s*+(?:也|都|均)?(?:是|为)?\s*+"
    r"(?:正确|对的|当选|符合题意|最符合|最合适|最佳|(?:正确|最佳)?答案)"
    r"(?!的?(?:说法|描述|叙述|表述|是|在于|之处|原因))"
    r"|(?i:\s+(?:is|are)\s+(?:correct|right)\b)"
)
# One option's analysis, a line or a sentence, that ends in a verdict: "B项带状疱疹，正确。",
# "B. 带状疱疹：沿神经分布，伴神经痛，正确", "B. 带状疱疹 √".
_LINE_VERDICT = re.compile(
    # The text between the letter and its verdict steps over a run of spaces whole, so that a long run is not
    # tried once per position; a verdict after a newline is still found through [,:.\s]\s*.
    r"(?m)(?:^|[。;!?])[ \t*#>(\[【]*+([A-F])(?:[.、:)\]】]|选项|项)(?:[^。;!?\s]|[^\S\n]++)*?[,:.\s]\s*+"
    r"(?:正确|符合题意|当选|[√✓✔])[ \t*]*(?=[。.!;\n]|$)")

# Where a verdict follows a letter: the only places a group said to be correct can end.
_VERDICT_SPOT = re.compile(f"(?<=[A-Za-z])(?=[\\s选项的说描叙:,也都均是为正对当符最答])(?={_VERDICT.pattern})")
_RUN_REVERSED = re.compile(_RUN)
_GROUP_RUNS = 12  # six letters and five "and" between them, plus one to spare

# --- 3. A reply that opens with its answer -----------------------------------------------------------------
_LEAD = re.compile(r"[\s*#>\"“‘'(\[【「]*")
_LEAD_TAIL = re.compile(r"(?:选项|项)?(?:\s|$|[、,/&;:.。!?()\[\]【】「」*\"”'’])")
# Lines of an option-by-option analysis ("A. …错误\nB. …") start with a letter as a bare answer does.
# Counted from the last line start before the letter, so blank lines are not rescanned from every line start.
_LINE_LETTER = re.compile(r"(?m)^(?:[^\S\n]|[*#>(\[【])*+[A-F](?:[.、:)\]】]|选项|项)")
# Only a reply that is nothing but letters may be lowercase ("b"); elsewhere "a" is an English article.
_BARE = re.compile(r"[\W_]*[A-Za-z]{1,6}[\W_]*")

# --- 4. Softer conclusions, read only when the letter ends its sentence: "综上，B。", "最可能是C。" ------------
_CONCLUSION_CUE = re.compile(
    r"(?:综上所述|综上|综合分析|因此|所以|故而|故|因而|总之|由此可见)[,:\s]*(?:应该|应当|应|最可能|可能)?(?:是|为|选)?"
    r"|(?:我认为|我觉得|应该|应当|最可能)?(?:是|为)|(?:首先|应|可)?考虑(?:为|是)?|对应(?:的)?(?:选项|答案)?(?:是|为)?"
)
_CONCLUSION_CUE_BEFORE_LETTER = re.compile(r"(?=[综因所故总由我应最是为首可考对])"
                                           f"(?>{_CONCLUSION_CUE.pattern})(?={_BEFORE_LETTER})")
_SENTENCE_END = re.compile(r"[ \t*]*+(?:选项|项)?(?:[^\S\n]*+\n|\s*+(?:$|[。.!?,;\n()\[\]【】」\"”]))")

# --- No usable answer --------------------------------------------------------------------------------------
# Two options held open, or no decision: "可能是B也可能是C", "B或C", "无法确定".
_HEDGE = re.compile(
    # where a hedge can start (see _ANSWER_CUE_BEFORE_LETTER)
    r"(?=[也都均无不难拿]|(?<![A-Za-z0-9])[A-F][选项\s或还o]|\b(?i:could))"
    r"(?:也可能是|也有可能|都有可能|均有可能|无法确定|不能确定|难以确定|无法判断|不能判断|难以判断|不好说|拿不准"
    r"|(?<![A-Za-z0-9])[A-F](?:选项|项)?\s*+(?:或者?|还是|or)\s*+(?:是)?\s*+[A-F](?![A-Za-z0-9])"
    r"|(?i:\bcould\s+(?:also|either)\s+be\b))"
)
_REFUSAL = re.compile(
    r"(?=[无不拒作]|\b(?i:i\s|as\s))"
    r"(?:无法回答|不能回答|无法作答|不能作答|无法提供|不能提供|无法给出|不能给出|不便回答|拒绝回答"
    r"|作为(?:一个|一名)?(?:AI|人工智能|语言模型)"
    r"|(?i:\bI\s+(?:cannot|can't|am\s+unable\s+to)\s+(?:answer|provide|help)|\bas\s+an\s+AI\b))"
)

# --- 5. A letter beside its own option's text: "选项D：带状疱疹", "带状疱疹（D）" ---------------------------------
_LETTER_BEFORE_TEXT = re.compile(r"(?<![A-Za-z0-9])([A-F])(?:选项|项)?[\s.、:()\[\]【】]*$")
_LETTER_AFTER_TEXT = re.compile(r"\s*[(\[【]\s*([A-F])\s*[)\]】]")

# --- 6. The text of one option alone -------------------------------------------------------------------------
_ANSWER_PREFIX = re.compile(
    r"^\s*(?:(?:正确|最终)?答案(?:应该|应)?(?:是|为)?|(?:应该|可能|最可能|我认为)?是|(?:故|应|首)?选(?:择)?"
    r"|(?i:(?:the\s+)?answer\s*(?:is)?))\s*:?\s*"
)
_NEGATION_WORD = re.compile(r"[不非没无未×✗]|排除|错误")  # "B项：带状疱疹，错误。" rules B out
_DROPPED_PUNCTUATION = frozenset({"Po", "Ps", "Pe", "Pi", "Pf"})


class _Group(NamedTuple):
    letters: str
    start: int
    end: int


def extract_answer(text: str | None, options: Mapping[str, str]) -> str | None:
    """The chosen letters, sorted and de-duplicated ("B", "BD"), or None when the text gives no usable answer
    ("unparsed").

    Raises ValueError when options is empty or keyed by anything but the letters A-F."""
    valid = _option_letters(options)
    if text is None:
        return None
    text = unicodedata.normalize("NFKC", text).strip()
    if not text:
        return None
    masked = _mask_option_terms(text, options)
    # Hedge and refusal phrases inside an option's own text ("在不能确定…的情况下，不能销售") are not the model's.
    blanked = _blank_options(text, options)
    last = _last_answer_statement(masked)
    if last:
        if _HEDGE.search(_sentence(blanked, last)) or _LATER_ALTERNATIVE.search(blanked, last.start):
            return None
        return _checked(last.letters, valid) or _option_text(text, options, exact_only=True)
    if _HEDGE.search(blanked) or _REFUSAL.search(blanked):
        return None
    letters = (_verdicts(masked, blanked) or _leading_answer(masked, blanked) or _conclusion(masked)
               or _paired(text, options, blanked))
    if letters:
        # letters outside the options may still be an option's text: "FDA" among {"A": "FDA", ...}
        return _checked(letters, valid) or _option_text(text, options, exact_only=True)
    return (_option_text(text, options, exact_only=bool(re.search(_RUN_UPPER, masked)))
            or _asserted_text(text, options))


def _option_letters(options: Mapping[str, str]) -> frozenset[str]:
    """The item's option letters; a mapping not keyed by letters is a caller's bug, not an unparsed answer."""
    letters = frozenset(unicodedata.normalize("NFKC", str(k)).strip().upper() for k in options)
    if not letters or not letters <= _UNIVERSE:
        raise ValueError(f"options must be keyed by letters A-F, got {sorted(map(str, options))!r}")
    return letters


def _mask_option_terms(text: str, options: Mapping[str, str]) -> str:
    """Hide the letters inside an option's own text ("B超", "A声级", "Ⅲ期B", "A+B+C") wherever the reply quotes
    it: there they are part of the text, not a choice. Texts of one character ("B" among blood groups) stay.
    The text keeps its length, so positions still line up with _blank_options."""
    terms = sorted((unicodedata.normalize("NFKC", str(v)).strip() for v in options.values()), key=len, reverse=True)
    for term in terms:  # longest first: "AB型" before "B型", which would leave "A□型"
        if len(term) >= 2 and re.search(r"[A-Za-z]", term):
            hidden = re.sub(r"[A-Za-z]", "□", term)
            text = re.sub(r"(?<![A-Za-z0-9])" + re.escape(term), lambda _: hidden, text)
    return text


def _blank_options(text: str, options: Mapping[str, str]) -> str:
    """The text with every option's own text (two characters or more) blanked out, keeping its length."""
    for value in options.values():
        term = unicodedata.normalize("NFKC", str(value)).strip()
        if len(term) >= 2:
            text = text.replace(term, " " * len(term))
    return text


def _checked(letters: str, valid: frozenset[str]) -> str | None:
    """Sorted, de-duplicated letters; None when one is not an option of this item (answer E for options A-D)."""
    chosen = set(letters)
    return "".join(sorted(chosen)) if chosen <= valid else None


def _run_letters(text: str, m: re.Match, *, allow_lower: bool, closing: bool, after_cue: bool) -> str | None:
    """The letters of one run matched by _RUN, or None when the run is a word, a term or a discussed option.

    closing: the run must end the answer (the second letter of "B、D"), which also holds for lowercase runs
    and runs of several letters, so that "a viral infection" or "ACE抑制剂" are never read as letters.
    after_cue: the run follows an answer cue, where "答案：\nA项错误" discusses A rather than choosing it."""
    run = m.group("run")
    if not run.isupper():
        if not (allow_lower and run.islower()):
            return None
        run, closing = run.upper(), True
    start, end = m.span("run")
    if not set(run) <= _UNIVERSE or _TERM_AFTER.match(text, end):
        return None
    if _TERM_BEFORE.search(text, max(0, start - 6), start):
        return None
    if closing or len(run) > 1:
        return run if _TAIL.match(text, end) else None
    return None if after_cue and _CLAUSE_AFTER.match(text, end) else run


def _read_group(text: str, pos: int, *, allow_lower: bool = False, after_cue: bool = False) -> _Group | None:
    """The letters of an answer starting at pos: "B", "BD", "B、D", "B和D", "(B)"; None when there are none."""
    m = _FIRST_RUN.match(text, pos)
    if not m or not (letters := _run_letters(text, m, allow_lower=allow_lower, closing=False, after_cue=after_cue)):
        return None
    start, end = m.start("run"), m.end()
    while m := _NEXT_RUN.match(text, end):
        more = _run_letters(text, m, allow_lower=allow_lower, closing=True, after_cue=after_cue)
        if not more:  # "A、B、C都是…": a list that runs on into a clause is its subject, not an answer
            listed = m.group("list") and set(m.group("run").upper()) <= _UNIVERSE
            return None if listed else _Group(letters, start, end)
        letters, end = letters + more, m.end()
        if len(letters) > len(_UNIVERSE):  # a longer list is no answer; stopping here keeps the reading linear
            return None
    return _Group(letters, start, end)


def _negated(text: str, start: int) -> bool:
    """不选A, 而不是C: the cue at start is denied."""
    return bool(_NEGATION.search(text, max(0, start - 2), start))


def _cue_ends(cues: re.Pattern, text: str) -> list[tuple[int, int]]:
    """(start, end) of each cue that a letter follows (after brackets, quotes, spaces): only those can start an
    answer, and the regex engine finds them without a Python step per cue ("选" two million times is no cue)."""
    return [m.span() for m in cues.finditer(text)]


def _last_answer_statement(text: str) -> _Group | None:
    """The last answer statement ("the last one wins"), read from the end: a long reply with many statements
    costs one reading of the last of them, not one per statement."""
    for tries, (start, end) in enumerate(reversed(_cue_ends(_ANSWER_CUE_BEFORE_LETTER, text))):
        if tries >= MAX_CANDIDATES:
            break
        group = _read_group(text, end, allow_lower=True, after_cue=True)
        if group and not _negated(text, start):
            return group._replace(start=start)
    return None


def _sentence(text: str, statement: _Group) -> str:
    """A statement up to the end of its sentence, where a hedge ("…，无法确定") takes it back; a hedge in a
    later sentence is usually about something else ("解析：对于无法确定病因的皮疹…")."""
    end = _SENTENCE_BREAK.search(text, statement.end)
    return text[statement.start:end.start() if end else len(text)]


def _verdicts(text: str, blanked: str) -> str:
    """Letters said to be correct. An analysis line is read with the options' texts blanked out, since they
    may hold anything, even the sentence breaks that end a line ("甘遂入丸散;0.5~1g").

    A group said to be correct ends right before its verdict, so only the runs just before a verdict (a "spot")
    are read: a group holds at most six letters, joined by at most five "and", so its first run is among the
    _GROUP_RUNS runs before the spot. Those runs are found in the reversed text (a run reads the same both
    ways), so a reply of a million letters and no verdict costs one regex scan."""
    letters, pos, done = "".join(_LINE_VERDICT.findall(blanked)), 0, -1
    reverse = None
    for tries, spot in enumerate(_VERDICT_SPOT.finditer(text)):
        if tries >= MAX_CANDIDATES:
            break
        if reverse is None:
            reverse = text[::-1]
        end = spot.start()
        starts = [len(text) - m.end() for m in itertools.islice(_RUN_REVERSED.finditer(reverse, len(text) - end),
                                                                    _GROUP_RUNS)]
        for start in sorted(st for st in starts if st > done):
            done = start
            if start < pos:
                continue
            group = _read_group(text, start)
            if group and _VERDICT.match(text, group.end):
                letters, pos = letters + group.letters, group.end
    return letters


def _leading_answer(text: str, blanked: str) -> str | None:
    """A reply that opens with its answer: "B", "(B)", "**B**", "B. 带状疱疹", "B选项", "BD", "B、D"."""
    if len(_LINE_LETTER.findall(text)) > 1:
        return None
    group = _read_group(text, _LEAD.match(text).end(), allow_lower=bool(_BARE.fullmatch(text)))
    if group and _ruled_out(blanked, group.end):  # "B项：急性胃肠炎，错误。" opens with a letter it rules out
        return None
    return group.letters if group and _LEAD_TAIL.match(text, group.end) else None


# A verdict against an option, in the rest of its sentence: "B项：急性胃肠炎，错误。"
_RULED_OUT = re.compile(r"错误|不正确|不对|不符合|不选|排除|[×✗]|(?i:\b(?:incorrect|wrong)\b)")


def _ruled_out(text: str, pos: int) -> bool:
    """The sentence from pos (at most 80 characters: a bounded look, so many calls stay linear) rules its
    subject out. `text` has the options' own texts blanked: "颌位关系错误" may be an option."""
    window = text[pos:pos + 80]
    end = _SENTENCE_BREAK.search(window)
    return bool(_RULED_OUT.search(window[:end.start()] if end else window))


def _conclusion(text: str) -> str | None:
    """The last soft conclusion, read from the end like the last answer statement."""
    for tries, (start, end) in enumerate(reversed(_cue_ends(_CONCLUSION_CUE_BEFORE_LETTER, text))):
        if tries >= MAX_CANDIDATES:
            break
        group = _read_group(text, end, after_cue=True)
        if group and _SENTENCE_END.match(text, group.end) and not _negated(text, start):
            return group.letters
    return None


def _paired(text: str, options: Mapping[str, str], blanked: str) -> str | None:
    """The one letter written right beside its own option's text: "选项D：带状疱疹", "带状疱疹（D）". An analysis
    that goes through several options pairs several letters and chooses none."""
    paired = set()
    for key, value in options.items():
        letter = unicodedata.normalize("NFKC", str(key)).strip().upper()
        term = unicodedata.normalize("NFKC", str(value)).strip()
        at = text.find(term) if term else -1
        while at >= 0 and letter not in paired:
            before = _LETTER_BEFORE_TEXT.search(text, max(0, at - 8), at)
            after = _LETTER_AFTER_TEXT.match(text, at + len(term))
            if letter in (before and before.group(1), after and after.group(1)) \
                    and not _ruled_out(blanked, at + len(term)):
                paired.add(letter)
            at = text.find(term, at + 1)
    return paired.pop() if len(paired) == 1 else None


def _core(text: str) -> str:
    """Text for comparing with an option: without spaces and punctuation."""
    text = unicodedata.normalize("NFKC", text)
    # Dashes, and symbols such as < > + ↑, tell options apart ("心房率<心室率" / "心房率>心室率", "-0.507" / "0.507").
    # Decided once per distinct character and dropped by str.translate, in C: a long reply costs milliseconds.
    dropped = {ord(ch): None for ch in set(text)
               if ch.isspace() or unicodedata.category(ch) in _DROPPED_PUNCTUATION}
    return text.translate(dropped)


def _no_space(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def _core_casefold(text: str) -> str:
    return _core(text).casefold()


def _option_text(text: str, options: Mapping[str, str], *, exact_only: bool) -> str | None:
    """The letter of the one option whose text the reply is, near enough: "带状疱疹", "答案是带状疱疹。".

    exact_only: the reply also holds letters, which a near match must not override ("答案：ABC（生活污水污染）")."""
    reply = _ANSWER_PREFIX.sub("", text, count=1)
    texts = {unicodedata.normalize("NFKC", str(k)).strip().upper(): str(v) for k, v in options.items()}
    # From the strictest comparison to the loosest: punctuation tells "1.75" from "175", case "Bb" from "bb".
    # The reply's forms are computed once each: it may be millions of characters long.
    core = _core(reply)
    said = core.casefold()
    for same, reply_form in ((_no_space, _no_space(reply)), (_core, core), (_core_casefold, said)):
        exact = [k for k, v in texts.items() if same(v) and same(v) == reply_form]
        if exact:
            return exact[0] if len(exact) == 1 else None
    cores = {k: _core_casefold(v) for k, v in texts.items()}
    if exact_only or not said:
        return None
    # One option inside a short reply ("考虑为大叶性肺炎"); an option contained in another one that is also
    # there (肺炎 in 大叶性肺炎) is not a second candidate.
    inside = [k for k, c in cores.items() if c and c in said]
    inside = [k for k in inside if not any(cores[k] != cores[o] and cores[k] in cores[o] for o in inside)]
    if len(inside) == 1 and len(cores[inside[0]]) >= 0.5 * len(said) and not _denies(said, cores[inside[0]]):
        return inside[0]
    # A slip of one character in a short option ("带状泡疹"), provided no other option is about as close.
    # A ratio of 0.75 needs the reply within 5/3 of the option's length, so longer replies are not compared.
    ratios = sorted(((difflib.SequenceMatcher(None, said, c).ratio(), k) for k, c in cores.items()
                     if c and len(said) <= 2 * len(c)), reverse=True)
    if ratios and ratios[0][0] >= 0.75 and (len(ratios) == 1 or ratios[1][0] <= ratios[0][0] - 0.1):
        return None if _denies(said, cores[ratios[0][1]]) else ratios[0][1]
    return None


def _denies(said: str, option: str) -> bool:
    """"不是带状疱疹", "排除水痘": the reply names an option to rule it out."""
    return len(_NEGATION_WORD.findall(said)) > len(_NEGATION_WORD.findall(option))


# --- 7. The text of the option(s) the reply asserts, inside a longer sentence --------------------------------
# "首选的处理是手术切除，…", "最可能的是坚韧性。", "正确的是甲、乙、丙。": an option's text right after an assertion
# cue, or right before a verdict, and not denied ("不是…", "排除…").
_ASSERT_BEFORE = re.compile(r"(?:是|为|选|选择|首选|考虑|诊断|(?i:answer\s+is|choose|is))\s*:?\s*[\"“'‘「【(]?$")
_ASSERT_AFTER = re.compile(r"[\"”'’」】)]?\s*(?:最符合|符合题意|正确|当选|最合适|最佳|(?i:is\s+(?:correct|the\s+best)))")
_DENIED = re.compile(r"(?:不|非|没|未|排除|而不是|并非|不是|不考虑|不选)[\u4e00-\u9fff]{0,2}$")
_OR_AFTER = re.compile(r"\s*(?:或者?|还是|(?i:or)\b)")
_SHORT_END = re.compile(r"\s*(?:$|[。.!?,;])")
_LIST_JOIN = re.compile(r"[、,;/和与及\s]{1,3}|以及")


def _asserted_text(text: str, options: Mapping[str, str]) -> str | None:
    """Letters of the options whose text the reply asserts. Several asserted apart (two answers held) give None;
    several in one list after one cue ("正确的是X、Y、Z") are one multi-answer. Each option's text is looked for at
    most MAX_CANDIDATES times, with a few characters around each place: linear in the reply's length."""
    texts = {unicodedata.normalize("NFKC", str(k)).strip().upper(): unicodedata.normalize("NFKC", str(v)).strip()
             for k, v in options.items()}
    texts = {k: v for k, v in texts.items() if v}
    groups = set()
    for letter, term in texts.items():
        at, tries = text.find(term), 0
        while at >= 0 and tries < MAX_CANDIDATES:
            before = text[max(0, at - 12):at]
            after = text[at + len(term):at + len(term) + 16]
            if _DENIED.search(before):
                pass
            elif len(term) == 1:  # "所以选3。": a one-character option only right after a cue, ending its sentence
                if _ASSERT_BEFORE.search(before) and _SHORT_END.match(after):
                    groups.add(letter)
            elif _ASSERT_BEFORE.search(before):
                if _OR_AFTER.match(text, at + len(term)):  # "应该是手术切除或者放射治疗": two held open
                    return None
                groups.add(_listed(text, at + len(term), letter, texts))
            elif _ASSERT_AFTER.match(after) and not after.lstrip().startswith("不"):
                groups.add(letter)
            at, tries = text.find(term, at + 1), tries + 1
    # a shorter option inside a longer asserted one (间壁 in 前间壁) is not asserted on its own
    groups = {g for g in groups if not any(g != h and len(g) == 1 and len(h) == 1 and texts[g] in texts[h]
                                           for h in groups)}
    return "".join(sorted(set(next(iter(groups))))) if len(groups) == 1 else None


def _listed(text: str, end: int, letter: str, texts: Mapping[str, str]) -> str:
    """The letters of a list of option texts that starts with `letter`'s text and goes on at `end`."""
    letters = letter
    while (join := _LIST_JOIN.match(text, end)) and len(letters) < len(texts):
        nxt = max(((k, v) for k, v in texts.items() if k not in letters and text.startswith(v, join.end())),
                  key=lambda kv: len(kv[1]), default=None)
        if nxt is None:
            break
        letters, end = letters + nxt[0], join.end() + len(nxt[1])
    return "".join(sorted(letters))
