"""Data tools: readers for the team datasets and format conversions."""

from rerank_lib.data.wikiqa import read_wikiqa_pairs, read_wikiqa_reranking_samples

__all__ = ["read_wikiqa_pairs", "read_wikiqa_reranking_samples"]
