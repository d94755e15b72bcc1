"""Conversation templates and label masking, tokenized turn by turn.

A template turns a LLaVA conversation (`[{"from": "human"|"gpt", "value": str}, ...]`) into text
*segments*, each marked supervised or not; the segments are tokenized one by one and concatenated, so
every token belongs to exactly one segment and the label mask is exact by construction. Nothing here
tokenizes a whole prompt and then splits strings or subtracts lengths, which is where LLaVA's
"tokenization mismatch" (loss = 0) comes from (llava-reference.md §2.4, §5 item 3).

How a segment is tokenized (`_encode_in_context`): as the continuation of the previous segment's text,
i.e. `encode(prev + text)` minus `encode(prev)`, checked at the token level. So the ids equal those of
tokenizing the rendered text in one go (SentencePiece's leading "▁", legacy or not, included) whenever
no token straddles a segment boundary; if one does, the segment is tokenized alone and the mask stays
exact. At `<image>` the text is cut and the next piece is tokenized as a fresh string, exactly like
LLaVA's `tokenizer_image_token`, which also puts the single id `IMAGE_TOKEN_INDEX` (-200) there.
The first human turn's `<image>` is first moved to its front and followed by "\\n" (LLaVA's
`preprocess_multimodal`).

What each template supervises (labels are `IGNORE_INDEX` everywhere else):

- `plain` (stage 1, LLaVA's `conv_llava_plain` / `preprocess_plain`): the sequence is
  `[BOS if the tokenizer adds one] <image> caption "\\n"`; the human text is discarded. Supervised:
  the caption and the "\\n" (no EOS, as in LLaVA). Masked: BOS and the image id.
- `vicuna_v1` (alias `v1`; LLaVA's `conv_vicuna_v1` / `preprocess_v1`): the text is
  `SYSTEM USER: <image>\\nQ ASSISTANT: A</s>USER: Q2 ASSISTANT: A2</s>` after the BOS the tokenizer
  adds. Supervised per round: `" " + A + eos_token`, i.e. the tokens after the "ASSISTANT:" tag (the
  first carries the separator space: "▁A" in SentencePiece, "ĠA" in byte-level BPE) and the `</s>`.
  Masked: BOS, system prompt, every "USER: ..." and the "ASSISTANT:" tag. Same net effect as LLaVA.
- `chat` (the tokenizer's own `chat_template`, e.g. Llama-3, Gemma, Phi-3, Qwen2) and the checked
  aliases `llama3`, `gemma`, `phi3`, `qwen2`: supervised per assistant turn is the answer exactly as
  the template prints it (Llama-3 and Gemma `trim` it) plus the end-of-turn token (`<|eot_id|>`,
  `<end_of_turn>`, `<|end|>`, `<|im_end|>`). Masked: the template's BOS, its system block (Qwen2's
  default one included), the user turns, the assistant headers (`...assistant<|end_header_id|>\\n\\n`,
  `<start_of_turn>model\\n`, `<|assistant|>\\n`, `<|im_start|>assistant\\n`) and what follows the
  end-of-turn token (the "\\n" of Gemma/Phi-3/Qwen2, Phi-3's closing `<|endoftext|>`). The `chat`
  template finds the end-of-turn token by rendering a probe conversation; the aliases check it.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jinja2

from sea.data.llava import IGNORE_INDEX, IMAGE_TOKEN, IMAGE_TOKEN_INDEX

log = logging.getLogger(__name__)

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
CHAT_ROLES = {"human": "user", "gpt": "assistant"}

Conversation = Sequence[dict[str, Any]]
Turns = list[tuple[str, str]]  # (from, value) after the <image> move


@dataclass(frozen=True)
class EncodedConversation:
    """Token ids (with `IMAGE_TOKEN_INDEX` for the image) and labels of the same length."""

    input_ids: list[int]
    labels: list[int]


@dataclass(frozen=True)
class Segment:
    """A piece of rendered text; `supervised` pieces keep their ids as labels."""

    text: str
    supervised: bool = False


class Template(ABC):
    """Renders LLaVA turns into segments; subclasses define one prompt format."""

    name: str

    @abstractmethod
    def render(self, turns: Turns, tokenizer: Any, generation: bool) -> tuple[list[int], list[Segment]]:
        """Ids to put before the text (a BOS the format adds outside it) and the text segments.

        With `generation`, `turns` end with a human turn and the text ends with the assistant header.
        """

    @abstractmethod
    def end_of_turn(self, tokenizer: Any) -> str:
        """The text that closes every supervised answer."""


# ---------------------------------------------------------------- tokenization helpers


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def _encode_in_context(tokenizer: Any, context: str, text: str) -> list[int]:
    """Ids of `text` as the continuation of `context` (token-level difference, checked)."""
    if not context:
        return _encode(tokenizer, text)
    head = _encode(tokenizer, context)
    both = _encode(tokenizer, context + text)
    if both[: len(head)] == head:
        return both[len(head) :]
    log.debug("a token straddles the boundary %r | %r: tokenizing the piece alone", context[-20:], text[:20])
    return _encode(tokenizer, text)


def _leading_special_ids(tokenizer: Any) -> list[int]:
    """The ids the tokenizer puts before a text with `add_special_tokens=True` (its BOS, if any)."""
    plain = _encode(tokenizer, "a")
    full = list(tokenizer.encode("a", add_special_tokens=True))
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return full[:start]
    return []


def _tokenize(tokenizer: Any, prefix_ids: list[int], segments: list[Segment]) -> EncodedConversation:
    """Tokenize segments one by one; `<image>` becomes `IMAGE_TOKEN_INDEX` and restarts the context."""
    ids, labels = list(prefix_ids), [IGNORE_INDEX] * len(prefix_ids)
    context = ""
    for segment in segments:
        for j, part in enumerate(segment.text.split(IMAGE_TOKEN)):
            if j:
                ids.append(IMAGE_TOKEN_INDEX)
                labels.append(IGNORE_INDEX)
                context = ""
            if not part:
                continue
            piece = _encode_in_context(tokenizer, context, part)
            ids += piece
            labels += piece if segment.supervised else [IGNORE_INDEX] * len(piece)
            context = part
    return EncodedConversation(ids, labels)


# ---------------------------------------------------------------- conversation checks


def check_conversation(conversations: Conversation, has_image: bool, last: str = "gpt") -> None:
    """Raise ValueError naming the problem unless the conversation is well formed.

    Well formed: a non-empty list of `{"from", "value": str}` turns alternating human/gpt from a
    human turn, ending with a `last` turn; for image samples exactly one `<image>`, in the first
    human turn; none in text-only samples. Turns are numbered from 1 in messages.
    """
    if isinstance(conversations, str | bytes) or not isinstance(conversations, Sequence):
        raise ValueError(f"conversation must be a list of turns, got {type(conversations).__name__}")
    if not conversations:
        raise ValueError("conversation is empty")
    for t, turn in enumerate(conversations, start=1):
        if not isinstance(turn, dict) or "from" not in turn or not isinstance(turn.get("value"), str):
            raise ValueError(f"turn {t} must be {{'from': 'human'|'gpt', 'value': str}}, got {turn!r:.100}")
        expected = "human" if t % 2 else "gpt"
        if turn["from"] != expected:
            if t == 1:
                raise ValueError(
                    f"conversation must start with a human turn, but turn 1 is from {turn['from']!r}"
                )
            raise ValueError(
                f"turns must alternate human/gpt: turn {t} is from {turn['from']!r}, expected {expected!r}"
            )
    if conversations[-1]["from"] != last:
        what = "the last human turn has no gpt answer" if last == "gpt" else "it must end with a human turn"
        raise ValueError(f"conversation ends with a {conversations[-1]['from']!r} turn: {what}")
    counts = [turn["value"].count(IMAGE_TOKEN) for turn in conversations]
    if has_image and (counts[0] != 1 or any(counts[1:])):
        raise ValueError(
            f"image sample needs exactly one '{IMAGE_TOKEN}', in the first human turn; "
            f"counts per turn: {counts}"
        )
    if not has_image and any(counts):
        first = next(t for t, c in enumerate(counts, start=1) if c)
        raise ValueError(f"text-only sample (has_image=False) has '{IMAGE_TOKEN}' in turn {first}")


def _llava_turns(conversations: Conversation, has_image: bool) -> Turns:
    """(from, value) pairs with `<image>` moved to the front of the first turn (`preprocess_multimodal`)."""
    turns = [(turn["from"], turn["value"]) for turn in conversations]
    if has_image:
        role, value = turns[0]
        turns[0] = (role, (IMAGE_TOKEN + "\n" + value.replace(IMAGE_TOKEN, "").strip()).strip())
    return turns


# ---------------------------------------------------------------- templates


@dataclass(frozen=True)
class PlainTemplate(Template):
    """Stage 1: `<image>` + caption + "\\n"; human text discarded (LLaVA's `preprocess_plain`)."""

    name: str = "plain"

    def render(self, turns: Turns, tokenizer: Any, generation: bool) -> tuple[list[int], list[Segment]]:
        expected = 1 if generation else 2
        if len(turns) != expected:
            raise ValueError(
                f"the plain template takes one human turn and one gpt caption, got {len(turns)} turns"
            )
        if IMAGE_TOKEN not in turns[0][1]:
            raise ValueError("the plain template needs an image sample (has_image=True)")
        segments = [Segment(IMAGE_TOKEN)]
        if not generation:
            segments.append(Segment(turns[1][1] + self.end_of_turn(tokenizer), supervised=True))
        return _leading_special_ids(tokenizer), segments

    def end_of_turn(self, tokenizer: Any) -> str:
        return "\n"


@dataclass(frozen=True)
class VicunaV1Template(Template):
    """LLaVA's `conv_vicuna_v1`: `SYSTEM USER: Q ASSISTANT: A</s>USER: ...`, after the tokenizer's BOS."""

    name: str = "vicuna_v1"
    system: str = VICUNA_SYSTEM

    def render(self, turns: Turns, tokenizer: Any, generation: bool) -> tuple[list[int], list[Segment]]:
        eos = self.end_of_turn(tokenizer)
        segments: list[Segment] = []
        text = self.system + " "
        for i in range(0, len(turns), 2):
            text += f"USER: {turns[i][1]} ASSISTANT:"
            if i + 1 < len(turns):
                segments += [Segment(text), Segment(" " + turns[i + 1][1] + eos, supervised=True)]
                text = ""
        if text:
            segments.append(Segment(text))
        return _leading_special_ids(tokenizer), segments

    def end_of_turn(self, tokenizer: Any) -> str:
        if not tokenizer.eos_token:
            raise ValueError("vicuna_v1 ends every answer with the tokenizer's eos_token, and it has none")
        return tokenizer.eos_token


def _apply_chat_template(tokenizer: Any, messages: list[dict[str, str]], generation: bool) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the tokenizer has no chat_template: set one, or use the 'vicuna_v1' template")
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)
    except jinja2.TemplateError as e:
        raise ValueError(f"the tokenizer's chat template rejected the conversation: {e}") from e


def _special_strings(tokenizer: Any) -> set[str]:
    strings = set(tokenizer.all_special_tokens)
    strings |= {str(token) for token in getattr(tokenizer, "added_tokens_decoder", {}).values()}
    return {s for s in strings if s}


@dataclass(frozen=True)
class ChatTemplate(Template):
    """The tokenizer's own chat template, rendered turn by turn.

    `end_of_turn_token` None: found from a probe rendering (the special token right after an
    answer). Set: checked against the probe, so a family alias fails loudly on the wrong tokenizer.
    """

    name: str = "chat"
    end_of_turn_token: str | None = None

    def render(self, turns: Turns, tokenizer: Any, generation: bool) -> tuple[list[int], list[Segment]]:
        messages = [{"role": CHAT_ROLES[role], "content": value} for role, value in turns]
        if generation:
            return [], [Segment(_apply_chat_template(tokenizer, messages, generation=True))]
        full = _apply_chat_template(tokenizer, messages, generation=False)
        eot = self.end_of_turn(tokenizer)
        segments: list[Segment] = []
        pos = 0
        for k in range(1, len(messages), 2):
            head = _apply_chat_template(tokenizer, messages[:k], generation=True)
            if not full.startswith(head) or len(head) < pos:
                raise ValueError(
                    f"chat template is not prefix-stable: the prompt up to assistant turn {k + 1} (with the "
                    "generation header) is not a prefix of the whole rendered conversation"
                )
            end = full.find(eot, len(head))
            answer = messages[k]["content"].strip()
            if end < 0 or answer not in full[len(head) : end]:
                raise ValueError(
                    f"cannot find answer {k + 1} followed by {eot!r} after its header in the rendered "
                    "conversation (does the answer contain the end-of-turn token?)"
                )
            end += len(eot)
            segments += [Segment(full[pos : len(head)]), Segment(full[len(head) : end], supervised=True)]
            pos = end
        if pos < len(full):
            segments.append(Segment(full[pos:]))
        return [], segments

    def end_of_turn(self, tokenizer: Any) -> str:
        probe = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
        full = _apply_chat_template(tokenizer, probe, generation=False)
        head = _apply_chat_template(tokenizer, probe[:1], generation=True)
        if not full.startswith(head) or not full[len(head) :].startswith("Hello"):
            raise ValueError("cannot locate the assistant answer in the chat template's rendering of a probe")
        after = full[len(head) + len("Hello") :]
        if self.end_of_turn_token is not None:
            if not after.startswith(self.end_of_turn_token):
                raise ValueError(
                    f"template {self.name!r} expects answers to end with {self.end_of_turn_token!r}, but the "
                    f"tokenizer's chat template follows an answer with {after[:40]!r}"
                )
            return self.end_of_turn_token
        found = max((s for s in _special_strings(tokenizer) if after.startswith(s)), key=len, default=None)
        if found is None:
            raise ValueError(
                f"the chat template follows an answer with {after[:40]!r}, which does not start with a "
                "special token; register a ChatTemplate with an explicit end_of_turn_token"
            )
        return found


# ---------------------------------------------------------------- registry and public API

TEMPLATES: dict[str, Template] = {}


def register_template(template: Template, name: str | None = None, overwrite: bool = False) -> Template:
    """Add a template under `name` (default `template.name`); refuses to replace one unless `overwrite`."""
    key = name or template.name
    if key in TEMPLATES and not overwrite:
        raise ValueError(f"template {key!r} is already registered")
    TEMPLATES[key] = template
    return template


def get_template(name: str | Template) -> Template:
    """The registered template called `name` (a Template passes through)."""
    if isinstance(name, Template):
        return name
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ValueError(f"unknown conversation template {name!r}; known: {sorted(TEMPLATES)}") from None


register_template(PlainTemplate())
register_template(VicunaV1Template())
register_template(TEMPLATES["vicuna_v1"], name="v1")
register_template(ChatTemplate())
for _name, _eot in {
    "llama3": "<|eot_id|>",
    "gemma": "<end_of_turn>",
    "phi3": "<|end|>",
    "qwen2": "<|im_end|>",
}.items():
    register_template(ChatTemplate(_name, _eot))


def encode(
    conversations: Conversation, tokenizer: Any, template: str | Template, has_image: bool
) -> EncodedConversation:
    """Input ids and labels of a whole conversation (ends with a gpt turn) under `template`."""
    check_conversation(conversations, has_image, last="gpt")
    tmpl = get_template(template)
    prefix, segments = tmpl.render(_llava_turns(conversations, has_image), tokenizer, generation=False)
    return _tokenize(tokenizer, prefix, segments)


def build_prompt_for_generation(
    conversations: Conversation, tokenizer: Any, template: str | Template, has_image: bool | None = None
) -> list[int]:
    """Ids of the prompt for the next answer: the conversation (ending with a human turn) plus the
    assistant header. `has_image` defaults to whether any turn holds `<image>`.

    They equal the first ids of `encode` on the conversation completed with that answer.
    """
    if has_image is None:
        turns = conversations if isinstance(conversations, list | tuple) else []
        has_image = any(isinstance(t, dict) and IMAGE_TOKEN in str(t.get("value", "")) for t in turns)
    check_conversation(conversations, has_image, last="human")
    tmpl = get_template(template)
    prefix, segments = tmpl.render(_llava_turns(conversations, has_image), tokenizer, generation=True)
    return _tokenize(tokenizer, prefix, segments).input_ids


def end_of_turn_ids(tokenizer: Any, template: str | Template) -> list[int]:
    """Stop ids for generation: the template's end-of-turn token first, then the tokenizer's EOS if other.

    `</s>` for vicuna_v1, `<|eot_id|>` Llama-3, `<end_of_turn>` Gemma, `<|end|>` Phi-3, `<|im_end|>`
    Qwen2, "\\n" for plain.
    """
    tmpl = get_template(template)
    eot = tmpl.end_of_turn(tokenizer)
    ids = _encode_in_context(tokenizer, "Hello", eot)
    if len(ids) != 1:
        raise ValueError(f"end-of-turn text {eot!r} of template {tmpl.name!r} is not a single token: {ids}")
    eos = tokenizer.eos_token_id
    return ids if eos is None or eos == ids[0] else ids + [eos]
