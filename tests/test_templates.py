"""Conversation templates: exact label masks, turn-by-turn tokenization, no drift, clear errors.

Offline: tiny tokenizers are trained here with `tokenizers` (byte-level BPE, and a SentencePiece-like
Metaspace BPE for the context-dependent case), given each family's special tokens, and the chat
families get their real chat templates from `tests/fixtures/chat_templates/` (sources in its README).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

from sea.data.llava import IGNORE_INDEX, IMAGE_TOKEN_INDEX  # noqa: E402
from sea.data.templates import (  # noqa: E402
    IMAGE_TOKEN,
    VICUNA_SYSTEM,
    ChatTemplate,
    EncodedConversation,
    build_prompt_for_generation,
    encode,
    end_of_turn_ids,
    get_template,
    register_template,
)

FIXTURES = Path(__file__).parent / "fixtures" / "chat_templates"

CONV_IMAGE = [
    {"from": "human", "value": "What color is the big square?\n<image>"},
    {"from": "gpt", "value": "The big square is red."},
    {"from": "human", "value": "How many circles are there?"},
    {"from": "gpt", "value": "There are two small circles."},
]
CONV_TEXT = [
    {"from": "human", "value": "Name a shape with three sides."},
    {"from": "gpt", "value": "A triangle has three sides."},
    {"from": "human", "value": "And one with four?"},
    {"from": "gpt", "value": "A square has four sides."},
]
CAPTION = [
    {"from": "human", "value": "Render a clear and concise summary of the photo.\n<image>"},
    {"from": "gpt", "value": "a red square next to two blue circles"},
]
# The text the first human turn becomes once <image> is moved to its front (LLaVA's preprocess_multimodal).
FIRST_IMAGE_TURN = "<image>\nWhat color is the big square?"

# family: special tokens (as in the model's tokenizer_config), whether the tokenizer adds BOS, the
# chat template fixture, the registered template name, the end-of-turn token and the assistant header.
FAMILIES = {
    "vicuna": dict(
        bos="<s>",
        eos="</s>",
        unk="<unk>",
        extra=[],
        add_bos=True,
        jinja=None,
        template="vicuna_v1",
        eot="</s>",
        header=" ASSISTANT:",
    ),
    "llama3": dict(
        bos="<|begin_of_text|>",
        eos="<|eot_id|>",
        extra=["<|start_header_id|>", "<|end_header_id|>", "<|end_of_text|>"],
        add_bos=True,
        jinja="llama3",
        template="llama3",
        eot="<|eot_id|>",
        header="<|start_header_id|>assistant<|end_header_id|>\n\n",
    ),
    "gemma": dict(
        bos="<bos>",
        eos="<eos>",
        pad="<pad>",
        extra=["<start_of_turn>", "<end_of_turn>"],
        add_bos=True,
        jinja="gemma",
        template="gemma",
        eot="<end_of_turn>",
        header="<start_of_turn>model\n",
    ),
    "phi3": dict(
        bos="<s>",
        eos="<|endoftext|>",
        unk="<unk>",
        extra=["<|user|>", "<|assistant|>", "<|system|>", "<|end|>"],
        add_bos=False,
        jinja="phi3",
        template="phi3",
        eot="<|end|>",
        header="<|assistant|>\n",
    ),
    "qwen2": dict(
        bos=None,
        eos="<|im_end|>",
        pad="<|endoftext|>",
        extra=["<|im_start|>"],
        add_bos=False,
        jinja="qwen2",
        template="qwen2",
        eot="<|im_end|>",
        header="<|im_start|>assistant\n",
    ),
    "qwen2_5": dict(
        bos=None,
        eos="<|im_end|>",
        pad="<|endoftext|>",
        extra=["<|im_start|>"],
        add_bos=False,
        jinja="qwen2_5",
        template="chat",
        eot="<|im_end|>",
        header="<|im_start|>assistant\n",
    ),
}
CHAT_FAMILIES = ["llama3", "gemma", "phi3", "qwen2", "qwen2_5"]
CONVS = {"image": (CONV_IMAGE, True), "text": (CONV_TEXT, False)}


def _corpus() -> list[str]:
    texts = [VICUNA_SYSTEM, "You are a helpful assistant.", "USER: ASSISTANT: user assistant model system"]
    texts += [t["value"] for conv in (CONV_IMAGE, CONV_TEXT, CAPTION) for t in conv]
    return texts * 5


def _wrap(tok: Tokenizer, fam: dict) -> PreTrainedTokenizerFast:
    specials = [s for s in (fam["bos"], fam["eos"], fam.get("unk"), fam.get("pad")) if s] + fam["extra"]
    if fam["add_bos"]:
        bos_id = tok.token_to_id(fam["bos"])
        tok.post_processor = processors.TemplateProcessing(
            single=f"{fam['bos']} $A", pair=f"{fam['bos']} $A $B", special_tokens=[(fam["bos"], bos_id)]
        )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=fam["bos"],
        eos_token=fam["eos"],
        unk_token=fam.get("unk"),
        pad_token=fam.get("pad"),
        additional_special_tokens=fam["extra"] + [IMAGE_TOKEN],
    )
    assert all(hf.convert_tokens_to_ids(s) != hf.unk_token_id or s == fam.get("unk") for s in specials)
    if fam["jinja"]:
        hf.chat_template = (FIXTURES / f"{fam['jinja']}.jinja").read_text()
    return hf


def _special_tokens(fam: dict) -> list[str]:
    return (
        [s for s in (fam["bos"], fam["eos"], fam.get("unk"), fam.get("pad")) if s]
        + fam["extra"]
        + [IMAGE_TOKEN]
    )


@functools.cache
def byte_level(family: str) -> PreTrainedTokenizerFast:
    """A byte-level BPE (Llama-3 / Qwen2 style): context-free at the template's boundaries."""
    fam = FAMILIES[family]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=_special_tokens(fam),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer)
    return _wrap(tok, fam)


@functools.cache
def sentencepiece_like(family: str) -> PreTrainedTokenizerFast:
    """A Metaspace BPE (Llama-2 / Vicuna / Phi-3 style): a "▁" is prepended at the start of a text only,
    so tokenizing a piece alone differs from tokenizing it inside the prompt."""
    fam = FAMILIES[family]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split("\n", behavior="isolated"), pre_tokenizers.Metaspace(prepend_scheme="first")]
    )
    tok.decoder = decoders.Metaspace(prepend_scheme="first")
    specials = _special_tokens(fam)
    if "<unk>" not in specials:
        specials.append("<unk>")
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(_corpus(), trainer)
    return _wrap(tok, fam)


def supervised_runs(enc: EncodedConversation) -> list[list[int]]:
    """Contiguous runs of supervised labels."""
    runs: list[list[int]] = []
    previous = IGNORE_INDEX
    for label in enc.labels:
        if label != IGNORE_INDEX:
            if previous == IGNORE_INDEX:
                runs.append([])
            runs[-1].append(label)
        previous = label
    return runs


def decode(tok: PreTrainedTokenizerFast, ids: list[int]) -> str:
    ids = [tok.convert_tokens_to_ids(IMAGE_TOKEN) if i == IMAGE_TOKEN_INDEX else i for i in ids]
    return tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def expected_answers(family: str, conv: list[dict]) -> list[str]:
    """What each supervised run must decode to: the answer plus the end-of-turn token."""
    lead = " " if family == "vicuna" else ""
    return [lead + t["value"] + FAMILIES[family]["eot"] for t in conv if t["from"] == "gpt"]


def chat_messages(conv: list[dict], has_image: bool) -> list[dict]:
    roles = {"human": "user", "gpt": "assistant"}
    messages = [{"role": roles[t["from"]], "content": t["value"]} for t in conv]
    if has_image:
        messages[0]["content"] = FIRST_IMAGE_TURN
    return messages


def vicuna_prompt(conv: list[dict], has_image: bool) -> str:
    """LLaVA's conv_vicuna_v1.get_prompt(), written out independently of the implementation."""
    values = [t["value"] for t in conv]
    if has_image:
        values[0] = FIRST_IMAGE_TURN
    text = VICUNA_SYSTEM + " "
    for q, a in zip(values[::2], values[1::2], strict=True):
        text += f"USER: {q} ASSISTANT: {a}</s>"
    return text


def rendered(family: str, conv: list[dict], has_image: bool) -> tuple[str, bool]:
    """The whole prompt rendered in one go, and whether the tokenizer's BOS must be added to it."""
    if family == "vicuna":
        return vicuna_prompt(conv, has_image), True
    tok = byte_level(family)
    return tok.apply_chat_template(chat_messages(conv, has_image), tokenize=False), False


def llava_tokenizer_image_token(
    prompt: str, tok: PreTrainedTokenizerFast, add_special_tokens: bool
) -> list[int]:
    """LLaVA's `mm_utils.tokenizer_image_token`: chunks between `<image>` tokenized alone, one BOS kept."""
    chunks = [
        tok(chunk, add_special_tokens=add_special_tokens).input_ids for chunk in prompt.split(IMAGE_TOKEN)
    ]
    offset = 1 if chunks[0] and chunks[0][0] == tok.bos_token_id and add_special_tokens else 0
    ids = chunks[0][:offset]
    for i, chunk in enumerate(chunks):
        if i:
            ids.append(IMAGE_TOKEN_INDEX)
        ids.extend(chunk[offset:])
    return ids


FAMILY_CASES = [(f, c) for f in ["vicuna", *CHAT_FAMILIES] for c in CONVS]


# ---------------------------------------------------------------- masks and ids


@pytest.mark.parametrize(("family", "case"), FAMILY_CASES)
def test_supervised_tokens_are_exactly_the_answers_plus_end_of_turn(family: str, case: str) -> None:
    conv, has_image = CONVS[case]
    tok = byte_level(family)
    enc = encode(conv, tok, FAMILIES[family]["template"], has_image)
    assert len(enc.input_ids) == len(enc.labels)
    assert all(label in (IGNORE_INDEX, i) for label, i in zip(enc.labels, enc.input_ids, strict=True))
    runs = supervised_runs(enc)
    assert [decode(tok, run) for run in runs] == expected_answers(family, conv)
    eot = tok.convert_tokens_to_ids(FAMILIES[family]["eot"])
    assert all(run[-1] == eot for run in runs)
    assert enc.input_ids.count(IMAGE_TOKEN_INDEX) == (1 if has_image else 0)
    assert IMAGE_TOKEN_INDEX not in enc.labels


@pytest.mark.parametrize(("family", "case"), FAMILY_CASES)
def test_ids_equal_one_go_tokenization_of_the_rendered_prompt(family: str, case: str) -> None:
    """Guard against drift: with -200 read back as the `<image>` token, the turn-by-turn ids are those
    of tokenizing the whole rendered prompt at once (byte-level BPE is context-free here)."""
    conv, has_image = CONVS[case]
    tok = byte_level(family)
    enc = encode(conv, tok, FAMILIES[family]["template"], has_image)
    text, add_bos = rendered(family, conv, has_image)
    image_id = tok.convert_tokens_to_ids(IMAGE_TOKEN)
    ids = [image_id if i == IMAGE_TOKEN_INDEX else i for i in enc.input_ids]
    assert ids == tok(text, add_special_tokens=add_bos).input_ids
    assert decode(tok, enc.input_ids) == (tok.bos_token if add_bos else "") + text


@pytest.mark.parametrize(("family", "case"), FAMILY_CASES)
def test_context_dependent_tokenizer_matches_llava_tokenizer_image_token(family: str, case: str) -> None:
    """SentencePiece-like tokenizer (leading "▁" only at the start of a text): the ids equal LLaVA's
    `tokenizer_image_token` on the rendered prompt, so the answer's first token carries its space."""
    conv, has_image = CONVS[case]
    tok = sentencepiece_like(family)
    enc = encode(conv, tok, FAMILIES[family]["template"], has_image)
    text, add_bos = (
        (vicuna_prompt(conv, has_image), True)
        if family == "vicuna"
        else (tok.apply_chat_template(chat_messages(conv, has_image), tokenize=False), False)
    )
    assert enc.input_ids == llava_tokenizer_image_token(text, tok, add_special_tokens=add_bos)
    runs = supervised_runs(enc)
    answers = [t["value"] for t in conv if t["from"] == "gpt"]
    lead = "▁" if family == "vicuna" else ""
    for run, answer in zip(runs, answers, strict=True):
        pieces = tok.convert_ids_to_tokens(run)
        assert "".join(pieces) == lead + answer.replace(" ", "▁") + FAMILIES[family]["eot"]


@pytest.mark.parametrize("make", [byte_level, sentencepiece_like])
@pytest.mark.parametrize("family", ["vicuna", "qwen2"])
def test_plain_template(family: str, make) -> None:
    """Stage 1: [BOS if the tokenizer adds one] <image> caption "\\n"; only caption + "\\n" supervised."""
    tok = make(family)
    enc = encode(CAPTION, tok, "plain", has_image=True)
    caption = CAPTION[1]["value"]
    reference = llava_tokenizer_image_token(IMAGE_TOKEN + caption + "\n", tok, add_special_tokens=True)
    assert enc.input_ids == reference
    n_masked = 2 if FAMILIES[family]["add_bos"] else 1  # BOS + image, as LLaVA's preprocess_plain
    assert enc.input_ids[n_masked - 1] == IMAGE_TOKEN_INDEX
    assert enc.labels[:n_masked] == [IGNORE_INDEX] * n_masked
    assert enc.labels[n_masked:] == enc.input_ids[n_masked:]
    assert decode(tok, enc.labels[n_masked:]) == caption + "\n"
    assert build_prompt_for_generation(CAPTION[:1], tok, "plain") == enc.input_ids[:n_masked]
    assert end_of_turn_ids(tok, "plain")[0] == enc.input_ids[-1]


def test_vicuna_rendering_is_llavas() -> None:
    tok = byte_level("vicuna")
    enc = encode(CONV_IMAGE, tok, "vicuna_v1", has_image=True)
    assert decode(tok, enc.input_ids) == (
        "<s>A chat between a curious user and an artificial intelligence assistant. The assistant gives "
        "helpful, detailed, and polite answers to the user's questions. USER: <image>\nWhat color is the "
        "big square? ASSISTANT: The big square is red.</s>USER: How many circles are there? ASSISTANT: "
        "There are two small circles.</s>"
    )
    assert get_template("v1") is get_template("vicuna_v1")


@pytest.mark.parametrize("family", ["llama3", "gemma"])
def test_template_bos_is_not_doubled(family: str) -> None:
    tok = byte_level(family)
    enc = encode(CONV_TEXT, tok, FAMILIES[family]["template"], has_image=False)
    assert enc.input_ids[0] == tok.bos_token_id and enc.input_ids.count(tok.bos_token_id) == 1


def test_qwen2_default_system_prompt_is_masked() -> None:
    tok = byte_level("qwen2")
    enc = encode(CONV_TEXT, tok, "qwen2", has_image=False)
    assert decode(tok, enc.input_ids).startswith(
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    )
    first = next(i for i, label in enumerate(enc.labels) if label != IGNORE_INDEX)
    assert "You are a helpful assistant." in decode(tok, enc.input_ids[:first])


# ---------------------------------------------------------------- generation


@pytest.mark.parametrize(("family", "case"), FAMILY_CASES)
def test_generation_prompt_ends_with_header_and_prefixes_training_ids(family: str, case: str) -> None:
    conv, has_image = CONVS[case]
    tok = byte_level(family)
    template = FAMILIES[family]["template"]
    prompt = build_prompt_for_generation(conv[:-1], tok, template)
    assert decode(tok, prompt).endswith(FAMILIES[family]["header"])
    enc = encode(conv, tok, template, has_image)
    assert enc.input_ids[: len(prompt)] == prompt
    # A greedy model that emits the answer and then the end-of-turn token reproduces the supervised run.
    run = supervised_runs(enc)[-1]
    assert enc.labels[len(prompt) : len(prompt) + len(run)] == run
    assert run[-1] == end_of_turn_ids(tok, template)[0]
    lead = " " if family == "vicuna" else ""
    assert decode(tok, run[:-1]) == lead + conv[-1]["value"]


@pytest.mark.parametrize("family", ["vicuna", *CHAT_FAMILIES])
def test_end_of_turn_ids(family: str) -> None:
    tok = byte_level(family)
    fam = FAMILIES[family]
    ids = end_of_turn_ids(tok, fam["template"])
    assert ids[0] == tok.convert_tokens_to_ids(fam["eot"])
    assert ids[-1] == tok.eos_token_id and len(set(ids)) == len(ids)
    if fam["jinja"] and fam["template"] != "chat":  # the auto-detecting template finds the same token
        assert end_of_turn_ids(tok, "chat")[0] == ids[0]


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("template", ["vicuna_v1", "llama3", "gemma", "qwen2"])
@pytest.mark.parametrize(
    ("conv", "has_image", "match"),
    [
        ([], False, "conversation is empty"),
        (
            [{"from": "gpt", "value": "Hi."}, {"from": "human", "value": "Hello."}],
            False,
            "start with a human turn",
        ),
        (
            [{"from": "human", "value": "a"}, {"from": "human", "value": "b"}],
            False,
            "alternate human/gpt: turn 2",
        ),
        (
            [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}, {"from": "human", "value": "c"}],
            False,
            "no gpt answer",
        ),
        ([{"from": "human", "value": "a"}, {"from": "gpt"}], False, "turn 2 must be"),
        (CONV_TEXT, True, "exactly one '<image>'"),
        (CONV_IMAGE, False, "text-only sample .* turn 1"),
        ([{"from": "human", "value": "<image><image>"}, {"from": "gpt", "value": "b"}], True, "exactly one"),
        ([{"from": "human", "value": "a"}, {"from": "gpt", "value": "<image>"}], True, "exactly one"),
    ],
)
def test_malformed_conversations_raise(template: str, conv: list, has_image: bool, match: str) -> None:
    family = "vicuna" if template == "vicuna_v1" else template
    with pytest.raises(ValueError, match=match):
        encode(conv, byte_level(family), template, has_image)


def test_generation_needs_a_final_human_turn() -> None:
    with pytest.raises(ValueError, match="must end with a human turn"):
        build_prompt_for_generation(CONV_TEXT, byte_level("qwen2"), "qwen2")


def test_plain_rejects_text_only_and_multi_turn() -> None:
    tok = byte_level("vicuna")
    with pytest.raises(ValueError, match="needs an image sample"):
        encode(CONV_TEXT[:2], tok, "plain", has_image=False)
    with pytest.raises(ValueError, match="one human turn and one gpt caption"):
        encode(CONV_IMAGE, tok, "plain", has_image=True)


def test_template_and_tokenizer_mismatches_raise() -> None:
    with pytest.raises(ValueError, match="unknown conversation template 'nope'"):
        get_template("nope")
    with pytest.raises(ValueError, match="expects answers to end with '<|eot_id|>'"):
        encode(CONV_TEXT, byte_level("qwen2"), "llama3", has_image=False)
    with pytest.raises(ValueError, match="no chat_template"):
        encode(CONV_TEXT, byte_level("vicuna"), "chat", has_image=False)
    with pytest.raises(ValueError, match="already registered"):
        register_template(ChatTemplate("chat"))


def test_answer_holding_the_end_of_turn_token_raises() -> None:
    conv = [{"from": "human", "value": "a"}, {"from": "gpt", "value": "x<|im_end|>y"}]
    with pytest.raises(ValueError, match="end-of-turn token"):
        encode(conv, byte_level("qwen2"), "qwen2", has_image=False)
