"""lmms-eval's rule-based multiple-choice extractor (`lmms_eval/tasks/_task_utils/mcq_extract.py`,
`extract_mcq_answer`), the last step of its offline (`static`) MMBench evaluation.

`extract_mcq_answer(response, choices)` returns one offered letter (upper case) or "" when the evidence
is absent, invalid or ambiguous:

1. Scope: the last `<answer>...</answer>` (or bare `answer>`) or `\\boxed{...}` container, when there is
   one; malformed or unfinished containers abstain. Inside it: the last declaration, else the letter the
   content starts with (abstaining when lines name different standalone letters).
2. Otherwise the last explicit declaration wins ("the answer is B", "Answer: C", "I choose D", "option B
   is correct", and the Chinese / Korean / Japanese forms), even an invalid one ("Answer: B. Final
   answer: Z" gives ""). A declaration followed by an alternative ("A or B", "A/B") gives "".
3. Otherwise implicit labels: a leading letter that is wrapped (`**B**`, `(B)`), bare, punctuated
   (`B.`, `B:`, `B)`) or followed by an assertion ("B is correct", "B because"); standalone `(X)`;
   an upper-case last line or last comma-separated segment that is just a letter. All labels seen
   (also `X.`-style option lists) must agree on one letter, else "".

Letters are single ASCII letters; `choices` defaults to A-H.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import NamedTuple

DEFAULT_CHOICES = tuple("ABCDEFGH")
# What may wrap a letter ("**B**", "(B)", "$B$", ...): opener -> closer, tried in this order.
WRAPPERS = (
    ("**", "**"), ("__", "__"), ("`", "`"), ("*", "*"), ("_", "_"), ('"', '"'), ("'", "'"),
    ("\u201c", "\u201d"), ("\u2018", "\u2019"), ("(", ")"), ("\uff08", "\uff09"), ("[", "]"), ("{", "}"),
    ("$", "$"),
)  # fmt: skip
END_PUNCTUATION = " \t\r\n.!?,;:\u3002\uff01\uff1f\uff0c\uff1b\uff1a"

_OPEN_CONTAINER = re.compile(r"<answer\b[^<>]*>|(?<![\w</])answer>|\\boxed\s*\{", re.IGNORECASE)
_ANSWER_TAG_START = re.compile(r"<answer\b", re.IGNORECASE)
_ANSWER_TAG = re.compile(r"<answer\b[^<>]*>|(?<![\w</])answer>|</answer\s*>", re.IGNORECASE)
_ANSWER_END = re.compile(r"</answer\s*>", re.IGNORECASE)
_DECLARATION = re.compile(
    r"(?P<prefix>"
    r"(?<!\w)(?:(?:the|my)\s+)?(?:(?:correct|best|final)\s+)?(?:answer|option|choice)\s*(?:is\b|[:\uff1a=])"
    r"|(?<!\w)i\s+(?:choose|select|pick)\b"
    r"|\u7b54\u6848\u662f|\u7b54\u6848\u4e3a|\u9009|\uc635\uc158|\uc815\ub2f5\uc740|\ub2f5\uc740"
    r"|\ub2f5\s*[:\uff1a]|\u7b54\u3048\u306f"
    r")"
    r"|(?P<postfix>(?<!\w)option\s+(?P<option>[a-z])(?!\w)\s+is\s+(?:the\s+)?(?:correct|right|best)\b)",
    re.IGNORECASE,
)
_OPTION_WORD = re.compile(r"(?:option|choice)\b\s*[:\uff1a]?\s*", re.IGNORECASE)
_LATEX_TEXT = re.compile(r"\\(?:text|mathrm|mathbf|textbf)\s*\{")
_PARENTHESISED = re.compile(r"(?<!\w)(?:\(\s*([A-Za-z])\s*\)|\uff08\s*([A-Za-z])\s*\uff09)(?!\w)")
_LABEL = re.compile(r"(?<!\w)([A-Za-z])[.):](?=\s|$)")
_ASSERTION = re.compile(
    r"(?:because\b|(?:is|seems|looks|appears)\s+(?:(?:the|a)\s+)?(?:correct|right|best|answer|option|choice)\b)",
    re.IGNORECASE,
)
_CONNECTOR = re.compile(
    r"(?:and\s*/\s*or\b|and\b|or\b|[/&,+|]|\u6216(?:\u8005)?|\u548c|\ub610\ub294|\u304b|\u3068)\s*",
    re.IGNORECASE,
)
_LETTER_PAIR = re.compile(r"(?<!\w)[A-Z]\s*(?:[,/&+|]|and\b|or\b)\s*[A-Z](?!\w)")
_URL = re.compile(r"(?<!\w)(?:[a-z][a-z0-9+.-]*://|www\.)\S*", re.IGNORECASE)
_LAST_SEGMENT = re.compile(r"(?:^|[\n,;\uff0c\uff1b])\s*([^\n,;\uff0c\uff1b]+)\s*$")
# Grammatical endings allowed right after the letter, per declaration marker.
_KOREAN_MARKERS = ("\uc635\uc158", "\uc815\ub2f5\uc740", "\ub2f5\uc740", "\ub2f5")
_KOREAN_ENDING = "\uc785\ub2c8\ub2e4"
_JAPANESE_MARKER = "\u7b54\u3048\u306f"
_JAPANESE_ENDING = "\u3067\u3059"


class Letter(NamedTuple):
    """A letter read at the start of a fragment: what follows it, whether it was wrapped, its case."""

    letter: str
    tail: str
    wrapped: bool
    uppercase: bool


def _is_word_char(ch: str) -> bool:
    """Word characters for boundaries, Unicode combining marks and format characters included."""
    return ch.isalnum() or ch == "_" or unicodedata.category(ch) in {"Mn", "Mc", "Me", "Cf"}


def _strip_wrappers(text: str) -> tuple[str, list[str]]:
    """`text` without leading LaTeX text commands, one "option"/"choice" word and presentation wrappers;
    the closers those wrappers need, innermost last."""
    closers: list[str] = []
    option_word_seen = False
    while text:
        latex = _LATEX_TEXT.match(text)
        if latex:
            closers.append("}")
            text = text[latex.end() :].lstrip()
            continue
        word = None if option_word_seen else _OPTION_WORD.match(text)
        if word:
            option_word_seen = True
            text = text[word.end() :].lstrip()
            continue
        pair = next((p for p in WRAPPERS if text.startswith(p[0])), None)
        if pair is None:
            break
        closers.append(pair[1])
        text = text[len(pair[0]) :].lstrip()
    return text, closers


def read_letter(fragment: str, ending: str = "") -> Letter | None:
    """The single ASCII letter `fragment` starts with (after separators, wrappers and an "option" word),
    or None when it is part of a word, a wrapper is left open, or it is e.g. `B.com`, `A-list`, `B's`."""
    text, closers = _strip_wrappers(fragment.lstrip().lstrip(":\uff1a=,\uff0c;\uff1b").lstrip())
    if not text or not text[0].isascii() or not text[0].isalpha():
        return None
    letter, tail = text[0], text[1:]
    if ending and tail.startswith(ending):
        tail = tail[len(ending) :]
    if tail and _is_word_char(tail[0]) and not (closers and tail.startswith(closers[-1])):
        return None
    moved = ""  # punctuation inside a wrapper, as in "**B.**", moves behind it
    for closer in reversed(closers):
        tail = tail.lstrip()
        inner = ".:\uff1a!?\u3002\uff01\uff1f" + (")" if closer != ")" else "")
        kept = tail.lstrip(inner)
        moved += tail[: len(tail) - len(kept)]
        tail = kept.lstrip()
        if not tail.startswith(closer):
            return None
        tail = tail[len(closer) :]
    tail = moved + tail
    if tail and _is_word_char(tail[0]):
        return None
    # "B.com", "C:/path", "A-list", "B's" are no labels
    if (
        tail[:1] in (".", ":", "-", "'", "\u2019")
        and len(tail) > 1
        and (tail[1].isalnum() or tail[1] in "/_")
    ):
        return None
    return Letter(letter.upper(), tail, bool(closers), letter.isupper())


def _names_another(found: Letter) -> bool:
    """Whether a second selection follows the letter directly ("A or B", "A/B", "B C"); letters later in
    an explanation do not count."""
    tail = found.tail.lstrip(" \t")
    labelled = tail[:1] in (".", ":", ")", "\uff1a")
    if labelled:
        tail = tail[1:].lstrip(" \t")
    connector = _CONNECTOR.match(tail)
    if connector:
        return tail.startswith("/") or read_letter(tail[connector.end() :]) is not None
    if labelled or tail.startswith(("\n", "\r")):
        return False
    other = read_letter(tail)
    return other is not None and not other.tail.strip(END_PUNCTUATION)


def _declared(text: str, allowed: set[str]) -> str | None:
    """The letter of the last declaration ("" when that one is invalid or names alternatives); None
    without any declaration."""
    answer = None
    for decl in _DECLARATION.finditer(text):
        if decl.group("postfix"):
            fragment = decl.group("option") + text[decl.end() :]
        else:
            fragment = text[decl.end() :]
        marker = decl.group("prefix") or ""
        if marker.startswith(_KOREAN_MARKERS):
            ending = _KOREAN_ENDING
        elif marker == _JAPANESE_MARKER:
            ending = _JAPANESE_ENDING
        else:
            ending = ""
        found = read_letter(fragment, ending)
        ok = found is not None and found.letter in allowed and not _names_another(found)
        answer = found.letter if ok else ""
    return answer


def _brace_end(text: str, start: int) -> int | None:
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


def _container(text: str) -> str | None:
    """The content of the last answer container; "" when the containers are malformed (nested or
    unbalanced tags, an unfinished box); None when there is none."""
    open_tag = False
    for tag in _ANSWER_TAG.finditer(text):
        closing = tag.group().startswith("</")
        if closing != open_tag:
            return ""
        open_tag = not closing
    starts = list(_OPEN_CONTAINER.finditer(text))
    tag_starts = {m.start() for m in starts if m.group().startswith("<")}
    if any(m.start() not in tag_starts for m in _ANSWER_TAG_START.finditer(text)):
        return ""
    if not starts:
        return None
    box_end = -1
    for m in starts:
        if not m.group().startswith("\\"):
            continue
        if m.start() < box_end:
            return ""
        end = _brace_end(text, m.end())
        box_end = end if end is not None else len(text)
    last = starts[-1]
    if not last.group().startswith("\\"):
        close = _ANSWER_END.search(text, last.end())
        return text[last.end() : close.start() if close else len(text)]
    return text[last.end() : box_end] if box_end < len(text) else ""


def _in_url(pos: int, urls: list[tuple[int, int]]) -> bool:
    return any(start <= pos < end for start, end in urls)


def _implicit(text: str, allowed: set[str]) -> str:
    """A letter from the answer's shape alone (rule 3 of the module doc), or ""."""
    urls = [m.span() for m in _URL.finditer(text)]
    marks = [
        m
        for pattern in (_PARENTHESISED, _LABEL)
        for m in pattern.finditer(text)
        if (m.start() == 0 or not _is_word_char(text[m.start() - 1]))
        and (m.end() == len(text) or not _is_word_char(text[m.end()]))
        and not _in_url(m.start(), urls)
    ]

    def mark_letter(m: re.Match[str]) -> str:
        return next(g for g in m.groups() if g).upper()

    labels = {mark_letter(m) for m in marks}
    for line in text.splitlines():
        found = read_letter(line)
        if found and found.uppercase and not found.tail.strip(END_PUNCTUATION):
            labels.add(found.letter)
    candidates: set[str] = set()
    for m in marks:
        if m.re is not _PARENTHESISED:
            continue
        found = read_letter(text[m.start() :])
        if found and _names_another(found):
            return ""
        candidates.add(mark_letter(m))
    lead = read_letter(text)
    if lead and _names_another(lead):
        return ""
    if lead:
        rest = lead.tail.lstrip()
        if (
            lead.wrapped
            or not rest.strip(END_PUNCTUATION)
            or rest.startswith((".", ":", ")", "\uff1a"))
            or _ASSERTION.match(rest)
        ):
            candidates.add(lead.letter)
    if not (lead and lead.letter in candidates) and any(
        not _in_url(m.start(), urls) for m in _LETTER_PAIR.finditer(text)
    ):
        return ""
    last = _LAST_SEGMENT.search(text)
    if last and not _in_url(last.start(1), urls):
        found = read_letter(last.group(1))
        if found and found.uppercase and not found.tail.strip(END_PUNCTUATION):
            candidates.add(found.letter)
    if len(labels | candidates) != 1 or not candidates:
        return ""
    return next(iter(candidates)) if candidates <= allowed else ""


def extract_mcq_answer(response: str, choices: Iterable[str] | None = None) -> str:
    """The selected letter (upper case, one of `choices`), or "" (see the module doc)."""
    if not response or not response.strip():
        return ""
    offered = list(choices or []) or DEFAULT_CHOICES
    allowed = {c.upper() for c in offered if len(c) == 1 and c.isascii() and c.isalpha()}
    text = response.strip()
    scope = _container(text)
    if scope is None:
        declared = _declared(text, allowed)
        return declared if declared is not None else _implicit(text, allowed)
    if re.search(r"</?\w", scope):
        return ""
    declared = _declared(scope, allowed)
    if declared is not None:
        return declared
    first = read_letter(scope)
    standalone = set()
    for line in scope.splitlines():
        found = read_letter(line)
        if found and not found.tail.strip(END_PUNCTUATION):
            standalone.add(found.letter)
    if first and len(standalone | {first.letter}) > 1:
        return ""
    return first.letter if first and first.letter in allowed and not _names_another(first) else ""
