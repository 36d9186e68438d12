"""Render a model card: a YAML header built with a YAML dumper and a markdown body from a sandboxed template.

User-provided strings (dataset names, examples, hyperparameters) are escaped for the place they land in (prose,
table cell, code span, Python or JSON code block), so they cannot break the markdown, run HTML, or end the YAML
header. The template runs in jinja2's immutable sandbox and values are never re-parsed as template code.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from rerank_lib.model_card.data import DatasetInfo, EvaluationInfo, ModelCardData

TEMPLATE_DIR = Path(__file__).resolve().parent
TEMPLATE_NAME = "template.md.j2"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(?:/[A-Za-z0-9][\w.-]{0,95})?$")
MAX_LOG_ROWS_OPEN = 100
MAX_DATASETS_OPEN = 3
BASE_TAGS = ("cross-encoder", "reranker", "generated_from_trainer")
USAGE_PLACEHOLDER = "path/to/model"
_METRIC_ACRONYM = re.compile(r"^(map|mrr|ndcg|ap|auc|f1|mse|mae)(?=$|@|_)", re.I)
DEFAULT_PAIR = ("How many people live in Berlin?", "Berlin has a population of about 3.9 million people.")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_BASELINE_KEY = re.compile(r"(^eval_|_)base_")
HEADER = re.compile(r"^---\r?\n(.*?)\r?\n---\r?\n?", re.S)


# ----- escaping -----
def _one_line(value: Any) -> str:
    return _CONTROL.sub(" ", str(value))


def escape_markdown(value: Any) -> str:
    """Text safe for markdown prose and headings: one line, no HTML, no emphasis, links or code."""
    text = _one_line(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def escape_cell(value: Any, limit: int = 200) -> str:
    """Text safe for a markdown table cell: escaped like prose (pipes too), long values shortened."""
    if isinstance(value, (dict, list, tuple)):
        value = json.dumps(value, ensure_ascii=False, default=str)
    text = _one_line(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return escape_markdown(text)


def code_span(value: Any, in_table: bool = False) -> str:
    """An inline code span that no backtick in the value can close early."""
    text = _one_line(value)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    if in_table:
        text = text.replace("|", "\\|")
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    return f"{ticks}{padded}{ticks}"


def fence(text: str) -> str:
    """A code fence longer than any backtick run in ``text``, so the block cannot be closed from inside."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _escape_code_chars(text: str) -> str:
    """Backticks and line/paragraph separators as \\u escapes: valid in JSON and Python strings, inert in markdown."""
    out = []
    for char in text:
        if char == "`" or unicodedata.category(char) in ("Zl", "Zp", "Cc") and char not in "\n":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


def python_string(value: Any) -> str:
    """A Python string literal for a code block (JSON string syntax is valid Python)."""
    return _escape_code_chars(json.dumps(str(value), ensure_ascii=False))


def json_block(value: Any) -> str:
    """Pretty JSON for a ```json block; backticks escaped so the fence holds."""
    return _escape_code_chars(json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False))


def hub_link(hub_id: str | None, kind: str = "") -> str | None:
    """The Hub URL of a valid repo id, else None (nothing else is ever put into a link)."""
    if not hub_id or not HUB_ID.match(hub_id) or ".." in hub_id:
        return None
    prefix = f"{kind}/" if kind else ""
    return f"https://huggingface.co/{prefix}{quote(hub_id, safe='/')}"


def number(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return escape_cell(value)
    if isinstance(value, int):
        return str(value)
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"


# ----- YAML header -----
class _CardDumper(yaml.SafeDumper):
    """Strings with line breaks or control characters are double-quoted on one line, so no value can end the header."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if _CONTROL.search(value) or value.strip() in ("---", "...") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_CardDumper.add_representer(str, _represent_str)


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_CardDumper, sort_keys=False, allow_unicode=True, width=float("inf"))


def metric_display_name(metric: str) -> str:
    """``ndcg@10`` -> ``NDCG@10``, ``accuracy`` -> ``Accuracy``: the model-index metric name."""
    name = _METRIC_ACRONYM.sub(lambda m: m.group(1).upper(), metric.replace("_", " "))
    return name[:1].upper() + name[1:]


def task_type(evaluation: EvaluationInfo) -> tuple[str, str]:
    """The model-index task (type, name) of an evaluator kind."""
    if evaluation.task_type:
        return evaluation.task_type, evaluation.task_type.replace("-", " ").title()
    kind = evaluation.evaluator.lower()
    if "classification" in kind:
        return "text-classification", "Text Classification"
    if "correlation" in kind:
        return "sentence-similarity", "Semantic Similarity"
    return "text-ranking", "Reranking"


def _tags(card: ModelCardData) -> list[str]:
    tags = list(BASE_TAGS)
    tags += [f"loss:{loss.name}" for loss in card.losses]
    if card.datasets:
        tags.append(f"dataset_size:{sum(int(d.size) for d in card.datasets)}")
    tags += [str(tag) for tag in card.tags]
    return list(dict.fromkeys(tags))


def _co2_header(co2: dict[str, Any]) -> dict[str, Any]:
    keys = ("emissions", "energy_consumed", "source", "training_type", "on_cloud", "cpu_model", "gpu_model")
    keys += ("ram_total_size", "hours_used", "hardware_used", "geographical_location")
    return {key: co2[key] for key in keys if co2.get(key) is not None}


def header_data(card: ModelCardData) -> dict[str, Any]:
    """The YAML header as a dict (the Hub's model card metadata)."""
    header: dict[str, Any] = {}
    if card.language:
        header["language"] = [card.language] if isinstance(card.language, str) else list(card.language)
    if card.license:
        header["license"] = card.license
    header["library_name"] = card.library_name
    header["tags"] = _tags(card)
    header["pipeline_tag"] = "text-ranking" if card.num_labels == 1 else "text-classification"
    if card.base_model and hub_link(card.base_model):  # a local path is no Hub id: text only, not metadata
        header["base_model"] = card.base_model
    if card.dataset_ids:
        header["datasets"] = card.dataset_ids
    metric_names = list(dict.fromkeys(m for e in card.evaluations for m in e.metrics))
    if metric_names:
        header["metrics"] = metric_names
    if card.co2_eq_emissions:
        header["co2_eq_emissions"] = _co2_header(card.co2_eq_emissions)
    if card.evaluations:
        results = []
        for evaluation in card.evaluations:
            kind, name = task_type(evaluation)
            dataset: dict[str, Any] = {"name": evaluation.dataset, "type": evaluation.dataset_id or evaluation.dataset}
            metrics = [
                {"type": metric, "value": float(value), "name": metric_display_name(metric)}
                for metric, value in evaluation.metrics.items()
                if isinstance(value, (int, float)) and math.isfinite(float(value))
            ]
            results.append({"task": {"type": kind, "name": name}, "dataset": dataset, "metrics": metrics})
        header["model-index"] = [{"name": card.model_name, "results": results}]
    return header


def update_card_metadata(text: str, tags: Sequence[str] = (), **fields: Any) -> str:
    """Add tags (and set header fields) in an existing card's YAML header, creating the header if needed."""
    match = HEADER.match(text)
    meta: dict[str, Any] = {}
    body = text
    if match:
        loaded = yaml.safe_load(match.group(1))
        meta = loaded if isinstance(loaded, dict) else {}
        body = text[match.end() :]
    if not tags and not fields and match:
        return text
    existing = meta.get("tags") or []
    existing = [existing] if isinstance(existing, str) else list(existing)
    merged = list(dict.fromkeys([*existing, *(str(tag) for tag in tags)]))
    if merged:
        meta["tags"] = merged
    meta.update(fields)
    return f"---\n{dump_yaml(meta)}---\n\n{body.lstrip(chr(10))}"


def set_usage_id(text: str, repo_id: str) -> str:
    """Point a card's usage snippets at ``repo_id`` when it was rendered before the repo id was known."""
    for loader in ("CrossEncoder", "load_reranker"):
        text = text.replace(f"{loader}({python_string(USAGE_PLACEHOLDER)})", f"{loader}({python_string(repo_id)})")
    return text


# ----- body context -----
def describe_datasets(names: Sequence[str]) -> str:
    """How the summary names the training data: all names up to five, else a count and the first three."""
    escaped = [escape_markdown(name) for name in names]
    count = len(escaped)
    if count == 0:
        return ""
    if count == 1:
        return f"the {escaped[0]} dataset"
    if count <= 5:
        return f"the {', '.join(escaped[:-1])} and {escaped[-1]} datasets"
    return f"{count} datasets ({', '.join(escaped[:3])} and {count - 3} others)"


def _example_pairs(card: ModelCardData, limit: int = 3) -> list[tuple[str, str]]:
    """Real (query, passage) pairs from the first training dataset's examples: its first two text columns."""
    for dataset in card.datasets:
        pairs = []
        for example in dataset.examples:
            texts = []
            for column in dataset.columns:
                value = example.get(column)
                if isinstance(value, list) and value and isinstance(value[0], str):
                    value = value[0]
                if isinstance(value, str):
                    texts.append(value)
            if len(texts) >= 2:
                pairs.append((texts[0], texts[1]))
        if pairs:
            return pairs[:limit]
    return [DEFAULT_PAIR]


def _evaluation_tables(card: ModelCardData) -> list[dict[str, Any]]:
    """One table per evaluator kind: a row per metric, a column per dataset, ``value (+delta)`` given a baseline."""
    groups: dict[str, list[EvaluationInfo]] = {}
    for evaluation in card.evaluations:
        groups.setdefault(evaluation.evaluator, []).append(evaluation)
    tables = []
    for evaluator, evaluations in groups.items():
        metrics = list(dict.fromkeys(m for e in evaluations for m in e.metrics))
        primaries = {e.primary_metric for e in evaluations if e.primary_metric}
        rows = []
        for metric in metrics:
            cells = []
            for evaluation in evaluations:
                value = evaluation.metrics.get(metric)
                if value is None:
                    cells.append("")
                    continue
                text = number(value)
                base = evaluation.baseline.get(metric)
                if isinstance(base, (int, float)) and isinstance(value, (int, float)):
                    text += f" ({float(value) - float(base):+.4f})"
                cells.append(f"**{text}**" if metric in primaries else text)
            label = escape_cell(metric)
            rows.append({"metric": f"**{label}**" if metric in primaries else label, "cells": cells})
        configs = [e.config for e in evaluations if e.config]
        tables.append(
            {
                "evaluator": evaluator,
                "datasets": [e.dataset for e in evaluations],
                "rows": rows,
                "has_baseline": any(e.baseline for e in evaluations),
                "config": configs[0] if configs and all(c == configs[0] for c in configs) else None,
            }
        )
    return tables


def _log_table(card: ModelCardData) -> dict[str, Any]:
    """Training loss and evaluation metrics merged by step, one row per logged step, best step in bold."""
    by_step: dict[int, dict[str, Any]] = {}
    eval_columns: list[str] = []
    for entry in card.log_history:
        if "step" not in entry or any(key.startswith("train_") for key in entry):
            continue  # the final summary entry (train_runtime, train_loss, ...) is not a log row
        row = by_step.setdefault(int(entry["step"]), {"epoch": entry.get("epoch"), "eval": {}})
        if entry.get("epoch") is not None:
            row["epoch"] = entry["epoch"]
        if "loss" in entry:
            row["loss"] = entry["loss"]
        for key, value in entry.items():
            # Runtimes are noise and first-stage baselines are constant; the evaluation table shows those.
            skipped = key.endswith(("_runtime", "_per_second")) or _BASELINE_KEY.search(key)
            if key.startswith("eval_") and not skipped:
                name = key[len("eval_") :]
                if name not in eval_columns:
                    eval_columns.append(name)
                row["eval"][name] = value
    headers = ["Epoch", "Step", "Training Loss"]
    headers += ["Validation Loss" if name == "loss" else escape_cell(name) for name in eval_columns]
    rows = []
    for step in sorted(by_step):
        row = by_step[step]
        epoch = row.get("epoch")
        cells = [number(float(epoch)) if isinstance(epoch, (int, float)) else "-", str(step)]
        cells.append(number(row["loss"]) if "loss" in row else "-")
        cells += [number(row["eval"][name]) if name in row["eval"] else "-" for name in eval_columns]
        if card.best_step is not None and step == card.best_step:
            cells = [f"**{cell}**" for cell in cells]
        rows.append(cells)
    best_shown = card.best_step is not None and card.best_step in by_step
    return {"headers": headers, "rows": rows, "collapsed": len(rows) > MAX_LOG_ROWS_OPEN, "best_shown": best_shown}


def _dataset_context(dataset: DatasetInfo) -> dict[str, Any]:
    columns = list(dataset.columns)
    stats = dataset.column_stats or {}
    return {
        "name": dataset.name,
        "link": hub_link(dataset.hub_id, "datasets"),
        "hub_id": dataset.hub_id,
        "size": dataset.size,
        "split": dataset.split,
        "loss": dataset.loss,
        "columns": columns,
        "stats_rows": max((s.rows for s in stats.values()), default=0),
        "types": [stats[c].dtype if c in stats else "" for c in columns],
        "details": [stats[c].describe() if c in stats else "" for c in columns],
        "has_stats": bool(stats),
        "examples": [[example.get(c, "") for c in columns] for example in dataset.examples[:3]],
    }


def _citations(card: ModelCardData) -> list[dict[str, str]]:
    seen: dict[str, str] = {}
    for loss in card.losses:
        text = loss.citation.strip()
        if text and text not in seen.values():
            seen[loss.name] = text
    return [{"name": name, "text": text, "fence": fence(text)} for name, text in seen.items()]


def _context(card: ModelCardData, model_id: str | None) -> dict[str, Any]:
    pairs = _example_pairs(card)
    usage_id = model_id or card.model_id or USAGE_PLACEHOLDER
    non_default = card.non_default_hyperparameters
    return {
        "card": card,
        "usage_id": usage_id,
        "base_model_link": hub_link(card.base_model),
        "datasets_text": describe_datasets([d.name for d in card.datasets]),
        "example_pairs": pairs,
        "output_shape": f"({len(pairs)},)" if card.num_labels == 1 else f"({len(pairs)}, {card.num_labels})",
        "evaluation_tables": _evaluation_tables(card),
        "open_datasets": [_dataset_context(d) for d in card.datasets[:MAX_DATASETS_OPEN]],
        "collapsed_datasets": [_dataset_context(d) for d in card.datasets[MAX_DATASETS_OPEN:]],
        "eval_datasets": [_dataset_context(d) for d in card.eval_datasets],
        "non_default": non_default,
        "all_hyperparameters": card.hyperparameters,
        "log": _log_table(card),
        "co2": card.co2_eq_emissions or {},
        "citations": _citations(card),
        "training_minutes": card.training_seconds / 60 if card.training_seconds else None,
    }


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters.update(
        md=escape_markdown, cell=escape_cell, code=code_span, py=python_string, json_block=json_block, number=number
    )
    env.globals.update(md=escape_markdown, cell=escape_cell, code=code_span, number=number)
    return env


def normalise_blank_lines(text: str) -> str:
    """Trailing spaces stripped and runs of blank lines reduced to one, so no card has 3+ blank lines in a row."""
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


def render_model_card(card: ModelCardData, model_id: str | None = None) -> str:
    """The full README.md text for a model folder."""
    body = _environment().get_template(TEMPLATE_NAME).render(**_context(card, model_id))
    return normalise_blank_lines(f"---\n{dump_yaml(header_data(card))}---\n\n{body}")
