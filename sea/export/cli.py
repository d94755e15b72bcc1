"""`python -m sea export SRC OUT`: a saved SeaMLLM as a transformers LLaVA folder (`sea.export.llava`)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sea export",
        description="Write a transformers LlavaForConditionalGeneration folder (model, processor, chat "
        "template) from a saved SeaMLLM, e.g. an instruct output <root>/instruct/seed0/<arm>.",
    )
    parser.add_argument("src", help="the saved SeaMLLM folder (holds sea_mllm.json)")
    parser.add_argument("out", help="the folder to write (replaced atomically)")
    parser.add_argument(
        "--template",
        help="our conversation template the model was trained with (default: the LLM's chat template "
        "when its tokenizer has one, else vicuna_v1)",
    )
    parser.add_argument(
        "--image-aspect-ratio",
        default="pad",
        choices=("pad", "none"),
        help="'pad': pad images to a square with the mean colour first, as LLaVA-1.5 (default)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for expected errors")
    return parser


def main(argv: Sequence[str]) -> int:
    from sea.errors import SeaError
    from sea.export.llava import export_llava

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        out = export_llava(args.src, args.out, args.template, args.image_aspect_ratio)
    except SeaError as err:
        if args.debug:
            raise
        print(f"sea export: error: {err}", file=sys.stderr)
        return 1
    print(out)
    return 0
