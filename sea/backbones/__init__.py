"""Tiny backbones for the embedded shapes world (the `backbones` stage).

- `clip_train`: a tiny open_clip CLIP trained contrastively on the world's images and captions, with
  zero-shot colour / shape / object accuracy on held-out eval objects;
- `tokenizer`: a byte-level BPE tokenizer built offline from the world's text;
- `lm_train`: a tiny Llama-architecture causal LM trained on the world corpus, with held-out perplexity.

Every module keeps torch, open_clip and transformers imports inside functions.
"""
