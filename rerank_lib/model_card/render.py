"""Render a model card: a YAML header built with a YAML dumper and a markdown body from a sandboxed template.

User-provided strings (dataset names, examples, hyperparameters) are escaped so they cannot break the markdown
tables or the YAML header.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from rerank_lib.model_card.data import ModelCardData

TEMPLATE_DIR = Path(__file__).resolve().parent
TEMPLATE_NAME = "template.md.j2"


def escape_markdown(value: Any) -> str:
    """Text safe for markdown prose: no raw HTML tags, no line breaks that end a list item."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    return text.replace("<", "&lt;").replace(">", "&gt;")


def escape_cell(value: Any, limit: int = 200) -> str:
    """Text safe for a markdown table cell: pipes escaped, one line, long values shortened."""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    text = escape_markdown(value).replace("|", "\\|").replace("`", "'")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _code(text: str) -> str:
    return f"`{text}`"


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["md"] = escape_markdown
    env.filters["cell"] = escape_cell
    env.filters["code"] = _code
    env.globals["md"] = escape_markdown
    env.globals["cell"] = escape_cell
    return env


def _yaml_header(card: ModelCardData) -> str:
    header: dict[str, Any] = {}
    if card.language:
        header["language"] = [card.language]
    if card.license:
        header["license"] = card.license
    tags = ["cross-encoder", "reranker", "generated_from_trainer"]
    tags += [f"loss:{loss.name}" for loss in card.losses]
    if card.datasets:
        tags.append(f"dataset_size:{sum(d.size for d in card.datasets)}")
    header["tags"] = tags
    header["base_model"] = card.base_model
    header["pipeline_tag"] = "text-ranking" if card.num_labels == 1 else "text-classification"
    header["library_name"] = "rerank_lib"
    metric_names = sorted({m for e in card.evaluations for m in e.metrics})
    if metric_names:
        header["metrics"] = metric_names
    if card.evaluations:
        header["model-index"] = [
            {
                "name": card.model_name,
                "results": [
                    {
                        "task": {"type": "text-ranking", "name": "Reranking"},
                        "dataset": {"name": e.dataset, "type": e.dataset},
                        "metrics": [
                            {"type": name, "value": float(value), "name": name} for name, value in e.metrics.items()
                        ],
                    }
                    for e in card.evaluations
                ],
            }
        ]
    return yaml.safe_dump(header, sort_keys=False, allow_unicode=True)


def _log_rows(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    return [
        {"epoch": float(row.get("epoch", 0.0)), "step": int(row["step"]), "loss": float(row["loss"])}
        for row in log_history
        if "loss" in row and "step" in row
    ]


def render_model_card(card: ModelCardData, model_id: str | None = None) -> str:
    """The full README.md text for a model folder."""
    context = asdict(card)
    context["datasets"] = card.datasets
    context["losses"] = card.losses
    context["evaluations"] = card.evaluations
    examples = [ex for d in card.datasets for ex in d.examples]
    pairs = [(str(list(ex.values())[0]), str(list(ex.values())[1])) for ex in examples[:3] if len(ex) >= 2]
    context["example_pairs"] = pairs or [("How many people live in Berlin?", "Berlin has about 3.9 million people.")]
    context["example_query"] = context["example_pairs"][0][0]
    context["usage_id"] = model_id or card.model_id or "path/to/model"
    base = card.base_model
    context["base_model_link"] = base if "://" in base else f"https://huggingface.co/{base}"
    context["log_rows"] = _log_rows(card.log_history)
    body = _environment().get_template(TEMPLATE_NAME).render(card=_Namespace(context))
    text = f"---\n{_yaml_header(card)}---\n\n{body}"
    return re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"


class _Namespace(dict):
    """Attribute access over a dict, so the template reads ``card.model_name``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as error:
            raise AttributeError(name) from error
