"""First stages: BEIR folders read into memory, BM25 (on ``bm25s``), and the lexical and hybrid scorers.

Below the data tools, the evaluators and training, above the core (the models and the scorer interface).
"""

from rerank_lib.retrieval.beir import document_text, load_beir
from rerank_lib.retrieval.bm25 import BM25, default_cache_dir, english_analyzer
from rerank_lib.retrieval.bm25_scorer import BM25Scorer
from rerank_lib.retrieval.hybrid_scorer import DEFAULT_BM25_SHARE, HybridScorer

__all__ = [
    "BM25",
    "DEFAULT_BM25_SHARE",
    "BM25Scorer",
    "HybridScorer",
    "default_cache_dir",
    "document_text",
    "english_analyzer",
    "load_beir",
]
