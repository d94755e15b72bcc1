"""Token-id constants shared by data and model code (LLaVA's `llava/constants.py`)."""

IGNORE_INDEX = -100  # label value the loss ignores
IMAGE_TOKEN_INDEX = -200  # the single input id that stands for an image placeholder
DEFAULT_IMAGE_TOKEN = "<image>"  # the placeholder in conversation text
