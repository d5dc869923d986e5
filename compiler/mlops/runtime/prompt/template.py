"""The model's prompt: one function turns a record into the text the model reads.

Training examples, evaluation prompts and serving requests all go through `Prompt.render`, so
what the model learned to answer is exactly what it is asked. The spec's `prompt` section is a
system prompt plus a Jinja2 template over a record's fields, rendered in a sandbox with
StrictUndefined (a field the record lacks is an error, never an empty string); with
`format: chat` the system prompt and the rendered template become chat messages that a chat
template (the spec's, else the tokenizer's) turns into text, as Hugging Face's
`apply_chat_template` does.

Only jinja2 is imported, so the compiler's validate step can parse templates with the same code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mlops.defaults import PROMPT_FORMAT, PROMPT_RESPONSE, PROMPT_TEMPLATE


class PromptError(Exception):
    """A template that does not parse, or a record it cannot render."""


@cache
def _env() -> ImmutableSandboxedEnvironment:
    # immutable: a template cannot mutate the record or the message list it is given
    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)


def parse(source: str) -> Any:
    """The template's AST; TemplateSyntaxError (with .lineno) when it does not parse."""
    return _env().parse(source)


def fields(source: str) -> set[str]:
    """The record fields a template reads (its undeclared top-level variables)."""
    return set(_fields(source))


@lru_cache(maxsize=256)  # validate asks per model and environment; most models share a template
def _fields(source: str) -> frozenset[str]:
    return frozenset(meta.find_undeclared_variables(parse(source)))


@dataclass(frozen=True)
class Prompt:
    template: str = PROMPT_TEMPLATE
    system: str | None = None
    response: str = PROMPT_RESPONSE  # the record field the model learns to write
    format: str = PROMPT_FORMAT  # text | chat
    chat_template: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Prompt:
        """From the spec's `prompt` section (as the rendered definitions carry it); None: the defaults."""
        d = d or {}
        return cls(
            template=d.get("template") or PROMPT_TEMPLATE,
            system=d.get("system"),
            response=d.get("response") or PROMPT_RESPONSE,
            format=d.get("format") or PROMPT_FORMAT,
            chat_template=d.get("chat_template"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "system": self.system,
            "response": self.response,
            "format": self.format,
            "chat_template": self.chat_template,
        }

    @property
    def fields(self) -> set[str]:
        return fields(self.template)

    def user(self, record: Mapping[str, Any]) -> str:
        """The template rendered over one record."""
        try:
            return _compiled(self.template).render(**record)
        except UndefinedError as exc:
            raise PromptError(f"prompt template: {exc.message} (the record has {sorted(record)})") from exc
        except SecurityError as exc:
            raise PromptError(f"prompt template: {exc}") from exc

    def messages(self, record: Mapping[str, Any]) -> list[dict[str, str]]:
        system = [{"role": "system", "content": self.system}] if self.system else []
        return [*system, {"role": "user", "content": self.user(record)}]

    def render(self, record: Mapping[str, Any], *, tokenizer_chat_template: str | None = None) -> str:
        """The text the model reads for one record, up to where its answer starts.

        text: the system prompt, a blank line, the rendered template. chat: the messages through
        the spec's chat template, else the tokenizer's (`tokenizer.chat_template`), with the
        generation prompt added.
        """
        if self.format == "chat":
            chat = self.chat_template or tokenizer_chat_template
            if not chat:
                raise PromptError("prompt.format is chat, but neither the spec nor the tokenizer has a chat template")
            return render_chat(chat, self.messages(record))
        user = self.user(record)
        return f"{self.system}\n\n{user}" if self.system else user

    def target(self, record: Mapping[str, Any]) -> str:
        """The answer the model learns for a training record (its `response` field)."""
        if self.response not in record:
            raise PromptError(f"the record has no response field '{self.response}' (it has {sorted(record)})")
        return str(record[self.response])


def render_chat(chat_template: str, messages: list[dict[str, str]], *, add_generation_prompt: bool = True) -> str:
    try:
        return _compiled(chat_template).render(messages=messages, add_generation_prompt=add_generation_prompt)
    except (UndefinedError, SecurityError) as exc:
        raise PromptError(f"chat template: {exc}") from exc


@cache
def _compiled(source: str) -> Any:
    try:
        return _env().from_string(source)
    except TemplateSyntaxError as exc:
        raise PromptError(f"prompt template line {exc.lineno}: {exc.message}") from exc
