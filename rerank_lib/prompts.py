"""Prompts (instructions) for queries and documents, stored with the model and applied at predict and training time.

As in sentence-transformers, a model carries named prompts (``{"web": "Given a web search query, ..."}``) and a
default prompt name; ``predict``/``rank`` take ``prompt_name=`` or a literal ``prompt=`` for the call. A query prompt
is put before the query (for a causal-LM reranker whose template has ``{instruction}``, it fills that field);
a document prompt, chosen the same way with ``document_prompt_name=``/``document_prompt=``, goes before the document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rerank_lib.errors import ConfigError


@dataclass(frozen=True)
class PromptSettings:
    """The model's named prompts and which of them apply by default to queries and to documents."""

    prompts: dict[str, str]
    default_prompt_name: str | None = None
    default_document_prompt_name: str | None = None

    def __post_init__(self) -> None:
        for name, text in self.prompts.items():
            if not isinstance(name, str) or not isinstance(text, str):
                raise ConfigError(f"prompts must map names to texts; got {name!r}: {text!r}.")
        for key in ("default_prompt_name", "default_document_prompt_name"):
            name = getattr(self, key)
            if name is not None and name not in self.prompts:
                raise ConfigError(f"{key}={name!r} is not one of the model's prompts {sorted(self.prompts)}.")

    @classmethod
    def from_saved(cls, saved: Mapping[str, Any], overrides: Mapping[str, Any]) -> PromptSettings:
        """Saved settings (ours or sentence-transformers') with the constructor's non-None arguments on top."""
        merged = {key: saved.get(key) for key in ("prompts", "default_prompt_name", "default_document_prompt_name")}
        merged.update({key: value for key, value in overrides.items() if value is not None})
        return cls(
            prompts=dict(merged["prompts"] or {}),
            default_prompt_name=merged["default_prompt_name"],
            default_document_prompt_name=merged["default_document_prompt_name"],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompts": dict(self.prompts),
            "default_prompt_name": self.default_prompt_name,
            "default_document_prompt_name": self.default_document_prompt_name,
        }

    def resolve(
        self,
        prompt: str | None = None,
        prompt_name: str | None = None,
        document_prompt: str | None = None,
        document_prompt_name: str | None = None,
    ) -> tuple[str, str]:
        """The (query, document) prompt texts of a call: a literal prompt wins over a name, a name over the default."""
        return (
            self._text(prompt, prompt_name, self.default_prompt_name, "prompt_name"),
            self._text(
                document_prompt, document_prompt_name, self.default_document_prompt_name, "document_prompt_name"
            ),
        )

    def _text(self, literal: str | None, name: str | None, default: str | None, what: str) -> str:
        if literal is not None:
            return literal
        chosen = name if name is not None else default
        if chosen is None:
            return ""
        if chosen not in self.prompts:
            raise ConfigError(f"{what}={chosen!r} is not one of the model's prompts {sorted(self.prompts)}.")
        return self.prompts[chosen]


def with_prompts(pairs: list[tuple[str, str]], query_prompt: str, document_prompt: str) -> list[tuple[str, str]]:
    """The pairs with the prompts put before their texts (the pairs themselves when both prompts are empty)."""
    if not query_prompt and not document_prompt:
        return pairs
    return [(query_prompt + str(query), document_prompt + str(document)) for query, document in pairs]
