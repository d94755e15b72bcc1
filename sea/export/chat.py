"""Chat templates (Jinja, for `LlavaProcessor`) that reproduce `sea.data.templates` on HF messages.

HF multimodal messages carry content lists (`[{"type": "image"}, {"type": "text", "text": ...}]`) or
plain strings. Both templates below flatten a message the way our templates see a LLaVA turn: every
image as `<image>\\n` first, then the text (LLaVA's `preprocess_multimodal`).

- `vicuna_v1` (LLaVA-1.5): `<s>SYSTEM USER: <image>\\nQ ASSISTANT: A</s>USER: Q2 ASSISTANT:`. The
  rendered text starts with the BOS our template puts before it (the one the tokenizer adds), like the
  chat templates that write their BOS: the processor's `apply_chat_template(tokenize=True)` and vLLM's
  chat API then tokenize it without adding another. A leading system message replaces the default
  system prompt. The tokenizer itself keeps no chat template (lmms-eval's `llava_hf` then uses its own
  LLaVA-1.5 one, which renders the same single-turn prompt and lets the tokenizer add the BOS).
- `chat`: the LLM's own chat template, run on the flattened string messages.
"""

from __future__ import annotations

import json
from typing import Any

from sea.data.templates import (
    VICUNA_SYSTEM,
    ChatTemplate,
    VicunaV1Template,
    _leading_special_ids,
    get_template,
)
from sea.errors import SeaError

# `content` as one string: images first (one `<image>\n` each), then the text parts joined by " ".
_FLATTEN = """\
{%- macro flatten(content, image_token) -%}
{%- if content is string -%}{{ content }}{%- else -%}
{%- set ns = namespace(images='', texts=[]) -%}
{%- for part in content -%}
{%- if part['type'] == 'image' -%}{%- set ns.images = ns.images + image_token + '\\n' -%}
{%- elif part['type'] == 'text' -%}{%- set ns.texts = ns.texts + [part['text']] -%}{%- endif -%}
{%- endfor -%}
{%- if ns.images -%}{{ ns.images ~ (ns.texts | join(' ') | trim) }}
{%- else -%}{{ ns.texts | join(' ') }}{%- endif -%}
{%- endif -%}
{%- endmacro -%}
"""

_VICUNA = """\
{{- BOS -}}
{%- if messages and messages[0]['role'] == 'system' -%}
{{- flatten(messages[0]['content'], IMAGE) + ' ' -}}{%- set turns = messages[1:] -%}
{%- else -%}{{- SYSTEM + ' ' -}}{%- set turns = messages -%}{%- endif -%}
{%- for m in turns -%}
{%- if m['role'] == 'user' -%}{{- 'USER: ' + flatten(m['content'], IMAGE) + ' ' -}}
{%- elif m['role'] == 'assistant' -%}{{- 'ASSISTANT: ' + flatten(m['content'], IMAGE) + EOS -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- 'ASSISTANT:' -}}{%- endif -%}
"""

# Rebinds `messages` to flattened string messages, then runs the LLM's own template unchanged.
_CHAT_PREFIX = """\
{%- set flat = namespace(messages=[]) -%}
{%- for m in messages -%}
{%- set flat.messages = flat.messages + [{'role': m['role'], 'content': flatten(m['content'], IMAGE)}] -%}
{%- endfor -%}
{%- set messages = flat.messages -%}
"""


def _constants(**values: str) -> str:
    return "".join(f"{{%- set {k} = {json.dumps(v)} -%}}\n" for k, v in values.items())


def llava_chat_template(tokenizer: Any, template: str, image_token: str) -> str:
    """The processor's chat template for our conversation `template` ('vicuna_v1'/'v1', 'chat' or a
    checked chat alias such as 'llama3'); SeaError for templates with no chat form (e.g. 'plain')."""
    try:
        tmpl = get_template(template)
    except ValueError as err:
        raise SeaError(str(err)) from None
    if isinstance(tmpl, VicunaV1Template):
        values = {
            "BOS": tokenizer.decode(_leading_special_ids(tokenizer)),
            "SYSTEM": tmpl.system or VICUNA_SYSTEM,
            "EOS": tmpl.end_of_turn(tokenizer),
            "IMAGE": image_token,
        }
        return _constants(**values) + _FLATTEN + _VICUNA
    if isinstance(tmpl, ChatTemplate):
        try:
            tmpl.end_of_turn(tokenizer)  # the LLM's template exists and fits the alias
        except ValueError as err:
            raise SeaError(f"template {template!r}: {err}") from None
        return _constants(IMAGE=image_token) + _FLATTEN + _CHAT_PREFIX + str(tokenizer.chat_template)
    raise SeaError(
        f"template {template!r} has no chat form to export (use 'vicuna_v1' or the LLM's 'chat' template)"
    )


def default_template(tokenizer: Any) -> str:
    """`chat` when the LLM's tokenizer has a chat template, else LLaVA-1.5's `vicuna_v1`."""
    return "chat" if getattr(tokenizer, "chat_template", None) else "vicuna_v1"
