"""The word list: caption words first, stop-words dropped, size, case, determinism, `keep`/`allow`."""

from __future__ import annotations

import pytest

from sea.data.wordlist import build_wordlist, build_wordlist_detailed, stop_words, tokenize

CAPTIONS = [
    "A red circle and a Blue square on the left.",
    "The red star is at the top of the image.",
    "Two red circles, one green triangle!",
    "zebra zebra",
    "apple",
]


def test_tokenize_lowercases_and_drops_digits_and_punctuation():
    assert tokenize("A Red-circle, 3 x4 don't") == ["a", "red", "circle", "x", "don", "t"]


def test_caption_words_first_ranked_by_count_then_alphabetically():
    words = build_wordlist(CAPTIONS, size=100, min_caption_count=2, frequent_source="none")
    assert words == ["red", "zebra"]
    words = build_wordlist(CAPTIONS, size=100, min_caption_count=1, frequent_source="none")
    assert words[:3] == ["red", "zebra", "apple"]  # red 3, zebra 2, then count-1 words A-Z
    assert words[3:] == sorted(words[3:])


def test_stop_words_gone_and_lower_case():
    words = build_wordlist(CAPTIONS, size=500, min_caption_count=1, min_length=2)
    stops = stop_words()
    assert "the" in stops and "the" not in words and "and" not in words and "top" not in words
    assert all(w == w.lower() and w.isalpha() and len(w) >= 2 for w in words)
    assert len(set(words)) == len(words)


def test_filled_with_frequent_words_up_to_size():
    result = build_wordlist_detailed(CAPTIONS, size=50, min_caption_count=1)
    assert len(result.words) == 50
    assert result.from_captions == 12 and result.from_frequent == 38 and result.from_keep == 0
    assert result.words[:2] == ["red", "zebra"]
    assert not set(result.words) & stop_words()


def test_size_truncates_caption_words():
    words = build_wordlist(CAPTIONS, size=3, min_caption_count=1)
    assert words == ["red", "zebra", "apple"]
    assert build_wordlist(CAPTIONS, size=0, min_caption_count=1) == []


def test_deterministic():
    a = build_wordlist(CAPTIONS, size=200, min_caption_count=1)
    b = build_wordlist(list(reversed(CAPTIONS)), size=200, min_caption_count=1)
    assert a == b


def test_keep_words_survive_stop_words_size_and_count():
    result = build_wordlist_detailed(
        CAPTIONS, size=5, min_caption_count=2, frequent_source="none", keep=["Top", "bottom left", "purple"]
    )
    # keep words that are stop-words ("top", "bottom"), absent ("purple") or below the count all stay;
    # size leaves room for one caption word besides them
    assert result.words == ["red", "top", "bottom", "left", "purple"]
    assert (result.from_captions, result.from_keep) == (1, 4)
    assert build_wordlist(CAPTIONS, size=2, min_caption_count=1, keep=["top", "cube", "cone"]) == [
        "top",
        "cube",
        "cone",
    ]


def test_keep_words_in_captions_keep_their_rank():
    words = build_wordlist(CAPTIONS, size=100, min_caption_count=1, frequent_source="none", keep=["top"])
    assert words == [
        "red",
        "zebra",
        "apple",
        "blue",
        "circle",
        "circles",
        "green",
        "image",
        "left",
        "square",
        "star",
        "top",
        "triangle",
    ]


def test_allow_only_exempts_from_stop_words():
    words = build_wordlist(
        CAPTIONS, size=100, min_caption_count=1, frequent_source="none", allow=["top", "one"]
    )
    assert "top" in words and "one" in words and "two" not in words
    assert "bottom" not in build_wordlist(
        CAPTIONS, size=100, min_caption_count=1, frequent_source="none", allow=["bottom"]
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="frequent-word source"):
        build_wordlist(CAPTIONS, size=100, min_caption_count=1, frequent_source="2of12")
    with pytest.raises(ValueError):
        build_wordlist(CAPTIONS, size=10, min_caption_count=0)


def test_blocklisted_words_never_enter_the_list():
    from sea.data.blocklist import BLOCKLIST

    captions = ["a shit photo of a red car", "red car and porn", "red car"]
    words = build_wordlist(
        captions, size=50, min_caption_count=1, frequent_source="none", keep=["fuck", "blue"], block=["car"]
    )
    assert "red" in words and "blue" in words and "photo" in words
    assert not {"shit", "porn", "fuck", "car"} & set(words)
    assert {"shit", "porn", "fuck"} <= BLOCKLIST
    # the frequent-word fill is filtered too
    filled = build_wordlist([], size=3000, min_caption_count=1, frequent_source="wordfreq")
    assert len(filled) == 3000 and not BLOCKLIST & set(filled)


# ---------------------------------------------------------------- lemmatised, content words (lemminflect)

LEMMA_CAPTIONS = [
    "Two dogs running on the grass, a dog containing nothing.",
    "A brown dog quickly jumps over the colored fences.",
    "The fence is below the trees",
]


def test_content_lemma_keeps_nouns_and_adjectives_as_lemmas():
    from sea.data.wordlist import content_lemma

    assert [content_lemma(w) for w in ("dogs", "children", "fences", "brown", "drawing")] == [
        "dog",
        "child",
        "fence",
        "brown",
        "drawing",  # a noun as well as a verb form: out of context the noun wins
    ]
    assert content_lemma("containing") is None and content_lemma("quickly") is None  # verb, adverb
    assert content_lemma("does") is None  # an auxiliary, though the dictionary also has the noun "doe"
    assert content_lemma("iphone") == "iphone"  # not in the dictionary: kept as it is


def test_lemmatized_list_counts_forms_together_and_drops_other_words():
    surface = build_wordlist(LEMMA_CAPTIONS, size=100, min_caption_count=1, frequent_source="none")
    lemmas = build_wordlist(
        LEMMA_CAPTIONS, size=100, min_caption_count=1, frequent_source="none", lemmatize=True
    )
    assert surface[:2] == ["dog", "brown"] and {"dogs", "fences", "containing", "quickly", "jumps"} <= set(
        surface
    )
    # dog x3 (dogs, dog, dog), fence x2 (fences, fence), tree from "trees"; verbs and adverbs gone
    assert lemmas[:2] == ["dog", "fence"] and "tree" in lemmas and "grass" in lemmas
    assert not {"dogs", "fences", "trees", "containing", "quickly", "jumps", "below"} & set(lemmas)
    # allow and keep words stay as given ("below" is a preposition, "trees" a plural)
    kept = build_wordlist(
        LEMMA_CAPTIONS,
        size=100,
        min_caption_count=1,
        frequent_source="none",
        lemmatize=True,
        allow=["below"],
        keep=["trees"],
    )
    assert "below" in kept and "trees" in kept and "tree" not in kept


def test_lemmatized_fill_and_blocklist():
    from sea.data.blocklist import BLOCKLIST
    from sea.data.wordlist import content_lemma

    filled = build_wordlist([], size=3000, min_caption_count=1, lemmatize=True)
    assert len(filled) == 3000 and not BLOCKLIST & set(filled) and not stop_words() & set(filled)
    assert "dog" in filled and "dogs" not in filled and "get" not in filled  # lemmas; a verb-only word gone
    # a blocked surface form blocks the lemma its captions are counted under, and the other way round
    words = build_wordlist(
        ["red cars", "red car", "boobs and tits"],
        size=50,
        min_caption_count=1,
        frequent_source="none",
        lemmatize=True,
        block=["cars"],
    )
    assert words == ["red"]
    # every blocklisted word is blocked in its lemma form too (or is no content word)
    assert all(content_lemma(w) in BLOCKLIST | {None} for w in BLOCKLIST)


def test_lemmatize_without_lemminflect_is_a_clear_error(monkeypatch):
    import sys

    from sea.data import wordlist
    from sea.errors import SeaError

    monkeypatch.setitem(sys.modules, "lemminflect", None)
    wordlist._lemma_lookup.cache_clear()
    wordlist.content_lemma.cache_clear()
    try:
        with pytest.raises(SeaError, match="data.wordlist.lemmatize=true needs the lemminflect package"):
            build_wordlist(["two dogs"], size=5, min_caption_count=1, frequent_source="none", lemmatize=True)
    finally:
        wordlist._lemma_lookup.cache_clear()
        wordlist.content_lemma.cache_clear()
