"""The EvalAI answer processor of LLaVA's `llava/eval/m4c_evaluator.py` (from MMF), reproduced exactly.

Used by the VQAv2 / VizWiz / TextVQA scorers on both predictions and human answers. Steps, in order:

1. `word_tokenize`: lowercase; delete every "," and "?"; "'s" -> " 's"; strip.
2. newlines and tabs -> spaces; strip.
3. `process_punctuation`: each character of `PUNCTUATIONS` is deleted when it is next to a space (or when
   the *input* matches `COMMA_STRIP`), otherwise replaced by a space; then periods not followed by a digit
   are removed - at most 32 of them (quirk kept, see `process_punctuation`).
4. `process_digit_article`: lowercase, split on whitespace, number words "none".."ten" -> digits, drop the
   articles a/an/the, expand `CONTRACTIONS` ("dont" -> "don't"), join with single spaces.
"""

from __future__ import annotations

import re

# The reference table, entries in its order. Quirks kept on purpose: the capitalised keys ("Im", "Ive",
# "Id've", "I'dve") can never match (the text is lowercased first), and "somebody'd" maps to "somebodyd".
CONTRACTIONS: dict[str, str] = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've",
    "hasnt": "hasn't", "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've",
    "hes": "he's", "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've",
    "I'dve": "I'd've", "Im": "I'm", "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've",
    "it'dve": "it'd've", "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't",
    "mustve": "must've", "neednt": "needn't", "notve": "not've", "oclock": "o'clock",
    "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at",
    "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's",
    "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd", "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've", "somebodyll": "somebody'll", "somebodys": "somebody's",
    "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
    "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've",
    "werent": "weren't", "whatll": "what'll", "whatre": "what're", "whats": "what's",
    "whatve": "what've", "whens": "when's", "whered": "where'd", "wheres": "where's",
    "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've",
    "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're",
    "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've",
    "y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've",
    "youll": "you'll", "youre": "you're", "youve": "you've",
}  # fmt: skip

NUMBER_MAP: dict[str, str] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
ARTICLES = ("a", "an", "the")
# The reference's pattern verbatim. `(?!<=\d)` was meant as a look-behind but is a look-ahead for the
# literal "<=" + digit, which never matches before a ".": in effect this is `\.(?!\d)`, so "1.5" keeps its
# period and "5." / "a.m." lose theirs whatever precedes them.
PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
COMMA_STRIP = re.compile(r"(?<=\d)(\,)+(?=\d)")
PUNCTUATIONS = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+",
    "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!",
)  # fmt: skip
# The reference calls `PERIOD_STRIP.sub("", text, re.UNICODE)`: the third positional argument of
# `Pattern.sub` is `count`, and `re.UNICODE == 32`, so only the first 32 periods are removed.
PERIOD_STRIP_COUNT = int(re.UNICODE)


class EvalAIAnswerProcessor:
    """Callable answer normaliser with the reference's method names (stateless; one instance is enough)."""

    CONTRACTIONS = CONTRACTIONS
    NUMBER_MAP = NUMBER_MAP
    ARTICLES = ARTICLES
    PERIOD_STRIP = PERIOD_STRIP
    COMMA_STRIP = COMMA_STRIP
    PUNCTUATIONS = PUNCTUATIONS

    def word_tokenize(self, word: str) -> str:
        """Lowercase, delete "," and "?", split off "'s", strip."""
        word = word.lower()
        word = word.replace(",", "").replace("?", "").replace("'s", " 's")
        return word.strip()

    def process_punctuation(self, in_text: str) -> str:
        """Delete or blank out punctuation, then strip up to 32 periods not followed by a digit.

        As in the reference, the "next to a space" and `COMMA_STRIP` tests look at the *input* text, while
        the replacements accumulate on the output. (After `word_tokenize` no comma is left, so the
        `COMMA_STRIP` branch only fires when this method is called on its own, as lmms-eval's VQAv2 does.)
        """
        out_text = in_text
        comma_between_digits = self.COMMA_STRIP.search(in_text) is not None
        for p in self.PUNCTUATIONS:
            if (p + " " in in_text or " " + p in in_text) or comma_between_digits:
                out_text = out_text.replace(p, "")
            else:
                out_text = out_text.replace(p, " ")
        return self.PERIOD_STRIP.sub("", out_text, count=PERIOD_STRIP_COUNT)

    def process_digit_article(self, in_text: str) -> str:
        """Number words to digits, articles dropped, contractions restored; single spaces.

        (The reference uses `NUMBER_MAP.setdefault(word, word)`, which grows the class dict as a side
        effect without changing any result; `get` gives the same words.)
        """
        words = [self.NUMBER_MAP.get(w, w) for w in in_text.lower().split()]
        words = [w for w in words if w not in self.ARTICLES]
        return " ".join(self.CONTRACTIONS.get(w, w) for w in words)

    def __call__(self, item: str) -> str:
        item = self.word_tokenize(item)
        item = item.replace("\n", " ").replace("\t", " ").strip()
        item = self.process_punctuation(item)
        return self.process_digit_article(item)


_PROCESSOR = EvalAIAnswerProcessor()


def normalize_answer(text: str) -> str:
    """`EvalAIAnswerProcessor()(text)`."""
    return _PROCESSOR(text)
