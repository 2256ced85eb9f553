"""Prompt building without transformers: the checkpoint's chat template (jinja2) and its `tokenizers` file.

Mirrors `LlavaProcessor.apply_chat_template(..., add_generation_prompt=True, tokenize=True)`: render one
user message [image, text], repeat the image token once per image feature, then tokenize, adding the
tokenizer's special tokens unless the rendered prompt already starts with the BOS token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from ..common.config import read_json
from ..common.errors import ConfigError

# Files the converter copies so this module (and transformers, for the torch backend) can read the folder.
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "chat_template.jinja", "chat_template.json", "generation_config.json",
    "tokenizer.model", "vocab.json", "merges.txt",
)  # fmt: skip
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
SPECIAL_NAMES = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")


def _token_str(v: Any) -> str | None:
    """tokenizer_config.json writes special tokens as strings or as AddedToken dicts."""
    if isinstance(v, dict):
        return v.get("content")
    return v if isinstance(v, str) else None


def read_chat_template(path: Path) -> str:
    """chat_template.jinja, else chat_template.json, else the tokenizer's template (transformers' order)."""
    if (path / "chat_template.jinja").is_file():
        return (path / "chat_template.jinja").read_text(encoding="utf-8")
    for name in ("chat_template.json", "processor_config.json", "tokenizer_config.json"):
        if (path / name).is_file():
            t = read_json(path / name).get("chat_template")
            if isinstance(t, list):  # named templates: [{"name": ..., "template": ...}]
                t = next((x.get("template") for x in t if x.get("name") == "default"), None)
            if isinstance(t, str):
                return t
    raise ConfigError(
        f"{path}: no chat template (chat_template.jinja, chat_template.json or tokenizer_config.json)"
    )


def _compile(template: str):
    """Sandboxed like transformers: trim/lstrip blocks, loop controls, `generation` blocks rendered as-is."""
    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(Extension):
        tags = {"generation"}

        def parse(self, parser):  # {% generation %}...{% endgeneration %} only marks assistant spans
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            return nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller):
            return caller()

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols]
    )
    env.filters["tojson"] = lambda x, indent=None, **_: json.dumps(x, ensure_ascii=False, indent=indent)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)


@dataclass
class ChatPrompt:
    """Turns (prompt text, image-token count) into token ids; decodes generated ids."""

    tokenizer: Tokenizer
    template: str
    special_tokens: dict[str, str]
    image_token: str = "<image>"

    @classmethod
    def from_folder(cls, path: str | Path) -> ChatPrompt:
        path = Path(path)
        if not (path / "tokenizer.json").is_file():
            raise ConfigError(f"{path}: no tokenizer.json (convert the checkpoint to create it)")
        tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        specials: dict[str, str] = {}
        for name in ("special_tokens_map.json", "tokenizer_config.json"):
            if (path / name).is_file():
                d = read_json(path / name)
                specials.update({k: s for k in SPECIAL_NAMES if (s := _token_str(d.get(k))) is not None})
        image_token = "<image>"
        if (path / "processor_config.json").is_file():
            image_token = read_json(path / "processor_config.json").get("image_token", image_token)
        return cls(tok, read_chat_template(path), specials, image_token)

    def render(self, prompt: str) -> str:
        """The chat template applied to one user message holding the image and then `prompt`."""
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        return _compile(self.template).render(
            messages=messages, add_generation_prompt=True, **self.special_tokens
        )

    def encode(self, prompt: str, n_image_tokens: int) -> list[int]:
        text = self.render(prompt)
        if self.image_token not in text:
            raise ConfigError(f"the chat template did not place the image token {self.image_token!r}")
        text = text.replace(self.image_token, self.image_token * n_image_tokens)
        bos = self.special_tokens.get("bos_token")
        add_special = not (bos is not None and text.startswith(bos))  # the template wrote BOS itself
        return self.tokenizer.encode(text, add_special_tokens=add_special).ids

    def token_id(self, token: str | None) -> int | None:
        return None if token is None else self.tokenizer.token_to_id(token)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)
