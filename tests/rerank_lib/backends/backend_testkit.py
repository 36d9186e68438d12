"""Toy queries and documents the backend tests score."""

from __future__ import annotations

QUERIES = ["what is the capital of france", "who reads a book", "where does the dog sleep"]
DOCUMENTS = [
    "paris is the capital of france",
    "the capital city of germany is berlin",
    "a dog runs",
    "the child reads a big red book in the train",
    "the cat sleeps in the small blue car",
    "music and song",
    "the woman eats food and drinks water",
    "rome italy",
]
PAIRS = [(query, document) for query in QUERIES for document in DOCUMENTS]
