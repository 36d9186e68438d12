"""benchmarks/serve_latency.py builds its requests from the team's WikiQA file, read as the catalog reads it."""

from __future__ import annotations

from serve_latency import WIKIQA_FILE, request_body, request_pairs, wikiqa_questions


def test_requests_are_built_from_the_wikiqa_questions_and_sentences() -> None:
    questions, sentences = wikiqa_questions(WIKIQA_FILE)
    assert len(sentences) == 20347 and 2000 < len(questions) < len(sentences)  # params.yaml's expected_rows
    assert len(set(questions)) == len(questions) and all(isinstance(text, str) and text for text in sentences[:100])
    query, documents = request_pairs(3, 20, questions, sentences)
    assert query == questions[3] and documents == sentences[60:80]
    path, body = request_body("rerank", query, documents)
    assert path == "/rerank" and body == {"query": query, "documents": documents}
    path, body = request_body("mlflow", query, documents[:1])
    assert path == "/invocations" and body == {"dataframe_records": [{"query": query, "passage": documents[0]}]}
