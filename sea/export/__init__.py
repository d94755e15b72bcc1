"""Export our checkpoints to other ecosystems' formats (transformers' LLaVA: `sea.export.llava`)."""
