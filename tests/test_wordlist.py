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
