"""SEA: Supervised Embedding Alignment for LLaVA-style multimodal LLMs (a plain library, no Prefect)."""

__version__ = "0.1.0"
