"""Generative (causal-LM) rerankers: a pair's score is ``logit("yes") - logit("no")`` after a prompt template.

Rerankers such as Qwen3-Reranker are decoder language models asked whether a document answers a query; the
relevance score is the log-odds of the answer token at the last position of the prompt. :class:`LogitScore` turns a
``(query, document)`` pair into that prompt's token ids and reads the score off the model's last-position logits.

The template is one string with ``{query}`` and ``{document}`` (once each) and optionally ``{instruction}``; the text
after the last field is the suffix that ends where the answer would be generated. Only the query and the document
are ever truncated (longest first, keeping their beginnings), so the template's literal text, its suffix and the
instruction always survive: the score is always read at the answer position. Literal pieces are tokenized on their
own, as Qwen3-Reranker's reference code tokenizes its prefix and suffix apart from the pair.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from rerank_lib.errors import ConfigError, ModelLoadError

QWEN3_RERANKER_TEMPLATE = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
    "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}<|im_end|>\n"
    "<|im_start|>assistant\n<think>\n\n</think>\n\n"
)
QWEN3_DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
FIELDS = ("query", "document", "instruction")


def is_causal_lm_config(config: Any) -> bool:
    """A decoder language model checkpoint (``*ForCausalLM``), as Qwen3-Reranker folders are."""
    return any(arch.endswith("ForCausalLM") for arch in (getattr(config, "architectures", None) or []))


@dataclass(frozen=True)
class LogitScoreConfig:
    """What a causal-LM reranker folder records besides its weights (``config.json["sentence_transformers"]``).

    Args:
        template: the prompt with ``{query}``, ``{document}`` and optionally ``{instruction}`` (default:
            Qwen3-Reranker's).
        true_token: the answer token whose logit means relevant.
        false_token: the token whose logit is subtracted (log-odds); ``None``: the score is the true token's logit.
        default_instruction: fills ``{instruction}`` when no prompt is given.
    """

    template: str = QWEN3_RERANKER_TEMPLATE
    true_token: str = "yes"
    false_token: str | None = "no"
    default_instruction: str | None = QWEN3_DEFAULT_INSTRUCTION

    def __post_init__(self) -> None:
        parse_template(self.template)  # a bad template fails here, before any model is loaded

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogitScoreConfig:
        unknown = sorted(set(data) - {"template", "true_token", "false_token", "default_instruction"})
        if unknown:
            raise ModelLoadError(f"logit_score: unknown key(s) {unknown} in the saved reranker config.")
        return cls(**data)

    @classmethod
    def from_chat_template(
        cls,
        tokenizer: Any,
        system: str,
        user: str = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}",
        **options: Any,
    ) -> LogitScoreConfig:
        """A template rendered by the tokenizer's own chat template: a system turn, a user turn, the answer prompt."""
        marker = "\x00PAIR\x00"
        rendered = tokenizer.apply_chat_template(
            [{"role": "system", "content": system}, {"role": "user", "content": marker}],
            tokenize=False,
            add_generation_prompt=True,
        )
        if rendered.count(marker) != 1:
            raise ConfigError("The tokenizer's chat template does not render the user message once.")
        escaped = rendered.replace("{", "{{").replace("}", "}}")
        return cls(template=escaped.replace(marker, user), **options)


def parse_template(template: str) -> tuple[tuple[str, str | None], ...]:
    """``(literal, field)`` pieces in order; the last piece's field is None (its literal is the suffix)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ConfigError(f"Reranker template is not a valid format string: {error}") from error
    pieces: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is not None and (name not in FIELDS or spec or conversion):
            raise ConfigError(
                f"Reranker template field {{{name}}} is not one of {{query}}, {{document}}, {{instruction}}."
            )
        pieces.append((literal, name))
    names = [name for _, name in pieces if name is not None]
    for required in ("query", "document"):
        if names.count(required) != 1:
            raise ConfigError(
                f"Reranker template needs {{{required}}} exactly once; it has it {names.count(required)} times."
            )
    if names.count("instruction") > 1:
        raise ConfigError("Reranker template has {instruction} more than once.")
    if pieces[-1][1] is not None:
        pieces.append(("", None))
    return tuple(pieces)


def longest_first(first: int, second: int, budget: int) -> tuple[int, int]:
    """Lengths that fit ``budget`` as the tokenizers' ``longest_first`` cuts them: the shorter side (the first on
    ties) keeps up to half the budget, the longer side takes the rest."""
    if first + second <= budget:
        return first, second
    if first <= second:
        keep = min(first, budget // 2)
        return keep, budget - keep
    keep = min(second, budget // 2)
    return budget - keep, keep


class LogitScore:
    """Builds the prompt token ids of pairs and scores them from a causal LM's last-position logits."""

    def __init__(self, config: LogitScoreConfig, tokenizer: Any) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.true_id = self._token_id(config.true_token)
        self.false_id = None if config.false_token is None else self._token_id(config.false_token)
        self.segments = parse_template(config.template)
        self._cache: dict[str, tuple[int, ...]] = {}

    def _token_id(self, token: str) -> int:
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise ModelLoadError(f"The tokenizer has no token {token!r} to read the relevance score from.")
        return int(token_id)

    def _literal_ids(self, text: str) -> tuple[int, ...]:
        """Token ids of a literal piece of the template (or a prompt), tokenized once."""
        if text not in self._cache:
            if len(self._cache) > 256:  # prompts vary per call at most a little; keep the cache bounded
                self._cache.clear()
            self._cache[text] = tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else ()
        return self._cache[text]

    def fixed_length(self, prompt: str = "", document_prompt: str = "") -> int:
        """Tokens every pair's prompt spends on the template, the instruction and the prompts."""
        instruction = prompt or self.config.default_instruction or ""
        has_instruction = any(name == "instruction" for _, name in self.segments)
        total = sum(len(self._literal_ids(literal)) for literal, _ in self.segments)
        total += len(self._literal_ids(instruction)) if has_instruction else len(self._literal_ids(prompt))
        return total + len(self._literal_ids(document_prompt))

    def encode(
        self,
        queries: Sequence[str],
        documents: Sequence[str],
        max_length: int,
        prompt: str = "",
        document_prompt: str = "",
    ) -> dict[str, list[list[int]]]:
        """Unpadded ``input_ids``/``attention_mask`` of each pair's prompt, at most ``max_length`` tokens.

        ``prompt`` fills ``{instruction}`` (else the default instruction); a template without that field gets the
        prompt right before the query instead. ``document_prompt`` goes right before the document. Neither is cut.
        """
        budget = max_length - self.fixed_length(prompt, document_prompt)
        if budget < 2:
            raise ConfigError(
                f"max_length={max_length} leaves {budget} token(s) for the query and the document after the "
                "reranker template; raise max_length or shorten the template or prompt."
            )
        has_instruction = any(name == "instruction" for _, name in self.segments)
        instruction = self._literal_ids(prompt or self.config.default_instruction or "")
        query_prefix = () if has_instruction else self._literal_ids(prompt)
        document_prefix = self._literal_ids(document_prompt)
        query_ids = self.tokenizer(list(queries), add_special_tokens=False)["input_ids"] if queries else []
        document_ids = self.tokenizer(list(documents), add_special_tokens=False)["input_ids"] if documents else []
        rows = []
        for query, document in zip(query_ids, document_ids, strict=True):
            keep_query, keep_document = longest_first(len(query), len(document), budget)
            fields = {
                "query": (*query_prefix, *query[:keep_query]),
                "document": (*document_prefix, *document[:keep_document]),
                "instruction": instruction,
            }
            ids: list[int] = []
            for literal, name in self.segments:
                ids.extend(self._literal_ids(literal))
                if name is not None:
                    ids.extend(fields[name])
            rows.append(ids)
        return {"input_ids": rows, "attention_mask": [[1] * len(ids) for ids in rows]}

    def scores(self, model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, 1) float32 scores of left-padded prompts: true minus false token logit at the last position."""
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        output = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False,
            logits_to_keep=1,
        )
        last = output.logits[:, -1].float()  # upcast before the difference: bf16 logits would tie
        score = last[:, self.true_id]
        if self.false_id is not None:
            score = score - last[:, self.false_id]
        return score.unsqueeze(1)
