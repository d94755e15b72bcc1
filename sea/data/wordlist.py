"""The word list W that CLIP scores every patch against (sea-method.md section 2.1, section 9 item 3).

Order of the list:

1. caption words: lower-cased alphabetic tokens of the captions, at least `min_length` letters, not
   stop-words, occurring at least `min_caption_count` times; most frequent first, ties alphabetical;
2. `keep` words absent from (1), in the order given (they are always in the list, whatever their
   count, length or stop-word status: e.g. the shapes world's colour, shape and position words);
3. frequent English words from wordfreq (same filters) until the list holds `size` words.

When (1) and (2) together exceed `size`, the least frequent non-`keep` caption words are dropped; the
list is longer than `size` only when `keep` alone is. `allow` words are exempt from the stop-word
filter but otherwise treated like any word. Stop-words are scikit-learn's `ENGLISH_STOP_WORDS`. Words of
the blocklist (`sea.data.blocklist`, plus `block`) never enter the list, not even as `keep` words.
No lemmatisation: docs/labeling.md says how this differs from the paper's list.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

# Runs of letters (any script); digits, underscores and punctuation split tokens.
TOKEN_RE = re.compile(r"[^\W\d_]+")
FREQUENT_SOURCES = ("wordfreq", "none")


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """scikit-learn's English stop-word list (imported lazily: sklearn is slow to import)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def tokenize(text: str) -> list[str]:
    """Lower-cased alphabetic tokens of `text`."""
    return TOKEN_RE.findall(text.lower())


def count_words(captions: Iterable[str]) -> Counter[str]:
    """Token counts over all captions."""
    counts: Counter[str] = Counter()
    for caption in captions:
        counts.update(tokenize(caption))
    return counts


def _normalize(words: Iterable[str]) -> list[str]:
    """Lower-cased tokens of `words` (multi-word entries split), de-duplicated, order kept."""
    out: dict[str, None] = {}
    for word in words:
        for token in tokenize(word):
            out.setdefault(token, None)
    return list(out)


@dataclass
class WordList:
    """The words, and how many came from each source."""

    words: list[str] = field(default_factory=list)
    from_captions: int = 0
    from_keep: int = 0
    from_frequent: int = 0


def frequent_words(lang: str, source: str = "wordfreq") -> Iterable[str]:
    """Frequent words of `lang`, most frequent first (an empty list for source `none`)."""
    if source == "none":
        return []
    if source != "wordfreq":
        raise ValueError(f"unknown frequent-word source {source!r}; known: {', '.join(FREQUENT_SOURCES)}")
    from wordfreq import top_n_list

    return top_n_list(lang, 10**7)  # the whole list (about 320K words for English), cached by wordfreq


def build_wordlist_detailed(
    captions: Iterable[str],
    size: int,
    min_caption_count: int,
    frequent_source: str = "wordfreq",
    lang: str = "en",
    min_length: int = 2,
    keep: Iterable[str] = (),
    allow: Iterable[str] = (),
    block: Iterable[str] = (),
) -> WordList:
    """`build_wordlist`, with the count of words from each source."""
    from sea.data.blocklist import blocked

    if size < 0 or min_caption_count < 1 or min_length < 1:
        raise ValueError(
            "need size >= 0, min_caption_count >= 1, min_length >= 1; "
            f"got {size}, {min_caption_count}, {min_length}"
        )
    never = blocked(set(_normalize(block)))
    keep_words = _normalize(keep)
    if dropped := [w for w in keep_words if w in never]:
        log.warning("word list: keep words %s are on the blocklist and left out", dropped)
        keep_words = [w for w in keep_words if w not in never]
    keep_set = set(keep_words)
    exempt = keep_set | set(_normalize(allow))
    stops = stop_words()

    def wanted(word: str) -> bool:
        if not word.isalpha() or len(word) < min_length or word in never:
            return False
        return word not in stops or word in exempt

    counts = count_words(captions)
    ranked = sorted(
        (w for w, n in counts.items() if n >= min_caption_count and wanted(w)), key=lambda w: (-counts[w], w)
    )
    budget = max(size - len(keep_words), 0)  # room for caption words that are not keep words
    result: dict[str, None] = {}
    n_other = 0
    for word in ranked:
        if word in keep_set:
            result[word] = None
        elif n_other < budget:
            result[word] = None
            n_other += 1
    from_captions = len(result)
    for word in keep_words:
        result.setdefault(word, None)
    from_keep = len(result) - from_captions
    if len(result) < size:
        for word in frequent_words(lang, frequent_source):
            word = word.lower()
            if word not in result and wanted(word):
                result[word] = None
                if len(result) >= size:
                    break
    words = list(result)
    if len(words) < size:
        log.warning("word list: only %d words available, fewer than size=%d", len(words), size)
    return WordList(words, from_captions, from_keep, len(words) - from_captions - from_keep)


def build_wordlist(*args: Any, **kwargs: Any) -> list[str]:
    """The word list only (the arguments of `build_wordlist_detailed`): caption words by frequency,
    then `keep` words, then frequent words up to `size`; deterministic, lower-case, de-duplicated."""
    return build_wordlist_detailed(*args, **kwargs).words
