"""A byte-level BPE tokenizer built offline from the world's text with the `tokenizers` library.

Byte-level (GPT-2 style) pre-tokenisation means every string encodes, with no `<unk>`: characters the
corpus never showed fall back to their UTF-8 bytes. Words carry their leading space ("Ġred"), so
`" " + word` encodes as one token for the world's words. Special tokens follow Llama's ids:
`<unk>` 0, `<s>` 1, `</s>` 2, `<pad>` 3; encoding adds `<s>` in front (as Llama's tokenizer does),
`add_special_tokens=False` leaves it out. LLaVA's `<image>` placeholder is not a token: the
multimodal code splices the image at id -200 (`IMAGE_TOKEN_INDEX`).
"""

from __future__ import annotations

from collections.abc import Iterable

from sea.utils.bpe import train_byte_level_bpe

UNK, BOS, EOS, PAD = "<unk>", "<s>", "</s>", "<pad>"
SPECIAL_TOKENS = (UNK, BOS, EOS, PAD)


def build_tokenizer(texts: Iterable[str], vocab_size: int, model_max_length: int, min_frequency: int = 2):
    """Train the BPE on `texts` (at most `vocab_size` tokens, fewer when merges run out) and wrap it as a
    `PreTrainedTokenizerFast` with bos/eos/unk/pad set."""
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(
            f"model.llm.vocab_size must be at least {256 + len(SPECIAL_TOKENS)} for a byte-level BPE, "
            f"got {vocab_size}"
        )
    tok = train_byte_level_bpe(texts, vocab_size, list(SPECIAL_TOKENS), min_frequency, BOS)
    for i, special in enumerate(SPECIAL_TOKENS):
        if tok.token_to_id(special) != i:
            raise AssertionError(f"special token {special} got id {tok.token_to_id(special)}, expected {i}")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=PAD,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
