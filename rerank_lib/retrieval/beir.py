"""BEIR folders read into memory: the corpus, the queries and the graded judgments (qrels) of one split.

A BEIR folder holds ``corpus.jsonl`` (or ``.jsonl.gz``) with ``{"_id", "title", "text"}`` lines, ``queries.jsonl``
with ``{"_id", "text"}`` lines and ``qrels/<split>.tsv`` with ``query-id, corpus-id, score`` rows (a header line is
optional; TREC's four-column ``qid iter docid rel`` layout is read too). Errors name the file and the line.
"""

from __future__ import annotations

import gzip
import json
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rerank_lib.errors import DataValidationError

Corpus = dict[str, dict[str, str]]
Queries = dict[str, str]
Qrels = dict[str, dict[str, int]]


def load_beir(folder: str | os.PathLike, split: str = "test") -> tuple[Corpus, Queries, Qrels]:
    """Read a BEIR folder: ``(corpus {id: {"title", "text"}}, queries {id: text}, qrels {qid: {doc_id: grade}})``.

    All queries are returned, judged or not; qrels are returned as written, including judgments of documents that
    are not in the corpus (evaluation counts those as misses, as pytrec_eval does).
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataValidationError(f"BEIR folder {root} does not exist.")
    corpus: Corpus = {}
    for path, line_number, record in _read_jsonl(_find(root, "corpus.jsonl")):
        doc_id = _record_id(record, path, line_number)
        if doc_id in corpus:
            raise DataValidationError(f"{path}, line {line_number}: duplicate corpus id {doc_id!r}.")
        corpus[doc_id] = {"title": _text_field(record, "title"), "text": _text_field(record, "text")}
    queries: Queries = {}
    for path, line_number, record in _read_jsonl(_find(root, "queries.jsonl")):
        query_id = _record_id(record, path, line_number)
        if query_id in queries:
            raise DataValidationError(f"{path}, line {line_number}: duplicate query id {query_id!r}.")
        queries[query_id] = _text_field(record, "text")
    qrels = _read_qrels(_find(root / "qrels", f"{split}.tsv"))
    return corpus, queries, qrels


def _find(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DataValidationError(f"BEIR folder {folder}: neither {name} nor {name}.gz exists.")


def _open_text(path: Path) -> Any:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")  # tolerate a byte-order mark from Windows editors


def _read_jsonl(path: Path) -> Iterator[tuple[Path, int, dict[str, Any]]]:
    with _open_text(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataValidationError(f"{path}, line {line_number}: invalid JSON ({error.msg}).") from error
            if not isinstance(record, dict):
                raise DataValidationError(f"{path}, line {line_number}: expected a JSON object.")
            yield path, line_number, record


def _record_id(record: dict[str, Any], path: Path, line_number: int) -> str:
    value = record.get("_id")
    if value is None or isinstance(value, (dict, list)) or str(value) == "":
        raise DataValidationError(f"{path}, line {line_number}: missing or empty '_id'.")
    return str(value)


def _text_field(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    return "" if value is None else str(value)


def _read_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    first_line = True
    with _open_text(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            is_first, first_line = first_line, False
            fields = line.rstrip("\r\n").split("\t") if "\t" in line else line.split()
            if len(fields) == 4:
                fields = [fields[0], fields[2], fields[3]]
            if len(fields) != 3:
                raise DataValidationError(
                    f"{path}, line {line_number}: expected 'query-id, corpus-id, score', got {len(fields)} columns."
                )
            query_id, doc_id, grade_text = (field.strip() for field in fields)
            try:
                grade = float(grade_text)
            except ValueError:
                if is_first:
                    continue  # the header line ("query-id corpus-id score")
                raise DataValidationError(
                    f"{path}, line {line_number}: score {grade_text!r} of query {query_id!r} is not a number."
                ) from None
            if not math.isfinite(grade) or grade != int(grade):
                raise DataValidationError(
                    f"{path}, line {line_number}: score {grade_text!r} of query {query_id!r} is not an integer."
                )
            qrels.setdefault(query_id, {})[doc_id] = int(grade)
    return qrels


def document_text(document: str | Mapping[str, Any]) -> str:
    """A BEIR document as one text: title and text joined, as the usual BM25 and reranking setups read it."""
    if isinstance(document, str):
        return document
    title = str(document.get("title") or "").strip()
    text = str(document.get("text") or "").strip()
    return f"{title} {text}".strip()
