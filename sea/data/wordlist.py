"""The word list W that CLIP scores every patch against (sea-method.md section 2.1, section 9 item 3).

Order of the list:

1. caption words: lower-cased alphabetic tokens of the captions, at least `min_length` letters, not
   stop-words, occurring at least `min_caption_count` times; most frequent first, ties alphabetical
   (with `lemmatize`: their content lemmas, counted over all their forms; see `content_lemma`);
2. `keep` words absent from (1), in the order given (they are always in the list, whatever their
   count, length or stop-word status: e.g. the shapes world's colour, shape and position words);
3. frequent English words from wordfreq (same filters) until the list holds `size` words.

When (1) and (2) together exceed `size`, the least frequent non-`keep` caption words are dropped; the
list is longer than `size` only when `keep` alone is. `allow` words are exempt from the stop-word
filter (and from lemmatisation) but otherwise treated like any word. Stop-words are scikit-learn's
`ENGLISH_STOP_WORDS`. Words of the blocklist (`sea.data.blocklist`, plus `block`, plus their lemmas when
lemmatising) never enter the list, not even as `keep` words.

`lemmatize` (the real-data preset's setting) maps every caption and fill word to its lemma and keeps
only content words (`content_lemma`, from lemminflect's dictionary: nouns and adjectives, no parse);
`keep` and `allow` words stay as given. docs/labeling.md says how this list differs from the paper's.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from sea.errors import SeaError

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


@lru_cache(maxsize=1)
def _lemma_lookup() -> Any:
    """lemminflect's `getAllLemmas` (its dictionary ships in the package: no download)."""
    try:
        from lemminflect import getAllLemmas
    except ImportError as e:
        raise SeaError(
            "data.wordlist.lemmatize=true needs the lemminflect package (a dependency in pyproject.toml: "
            "pip install -e . -c requirements/constraints.txt), or set data.wordlist.lemmatize=false"
        ) from e
    return getAllLemmas


@cache
def content_lemma(token: str) -> str | None:
    """The lemma of lower-case `token` as a content word: its noun lemma when lemminflect's dictionary
    knows it as a noun, else its adjective lemma; None when the dictionary knows it only as another part
    of speech (a verb, adverb, pronoun, ...) or as an auxiliary at all ("does" is no "doe"); the token
    itself when the dictionary does not know it (names, brands, new words). Out of context, from the
    dictionary alone: "drawing" and "look" are nouns, "containing" is dropped."""
    lemmas = _lemma_lookup()(token)
    if not lemmas:
        return token
    if "AUX" in lemmas:
        return None
    for pos in ("NOUN", "PROPN", "ADJ"):
        if pos in lemmas:
            return lemmas[pos][0]
    return None


def caption_terms(text: str, lemmatize: bool = False, as_is: Collection[str] = ()) -> list[str]:
    """The terms of `text` the word list counts: its tokens, or with `lemmatize` the content lemmas of
    its tokens (`content_lemma`; tokens that are not content words are left out) except that tokens in
    `as_is` stay as they are."""
    tokens = tokenize(text)
    if not lemmatize:
        return tokens
    terms = (t if t in as_is else content_lemma(t) for t in tokens)
    return [t for t in terms if t is not None]


def count_words(
    captions: Iterable[str], lemmatize: bool = False, as_is: Collection[str] = ()
) -> Counter[str]:
    """Term counts (`caption_terms`) over all captions."""
    counts: Counter[str] = Counter()
    for caption in captions:
        counts.update(caption_terms(caption, lemmatize, as_is))
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
    lemmatize: bool = False,
) -> WordList:
    """`build_wordlist`, with the count of words from each source."""
    from sea.data.blocklist import blocked

    if size < 0 or min_caption_count < 1 or min_length < 1:
        raise ValueError(
            "need size >= 0, min_caption_count >= 1, min_length >= 1; "
            f"got {size}, {min_caption_count}, {min_length}"
        )
    never = blocked(set(_normalize(block)))
    if lemmatize:  # "cars" blocked blocks the lemma "car" that its captions count under
        never |= {lemma for w in never if (lemma := content_lemma(w)) is not None}
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

    counts = count_words(captions, lemmatize, exempt)
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
            if lemmatize and word not in exempt:
                word = content_lemma(word) or ""
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
