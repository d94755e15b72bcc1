"""A byte-level (GPT-2 style) BPE trained offline with the `tokenizers` library: the world LM's tokenizer
(`sea.backbones.tokenizer`) and the tiny test tokenizers (`sea.models.tiny`)."""

from __future__ import annotations

from collections.abc import Iterable


def train_byte_level_bpe(
    texts: Iterable[str], vocab_size: int, special_tokens: list[str], min_frequency: int, bos: str | None
):
    """A byte-level BPE `tokenizers.Tokenizer` trained on `texts` (special tokens first, in order), which
    puts `bos` in front of every encoding when given."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    if bos:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
        )
    return tok
