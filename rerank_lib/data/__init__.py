"""Data tools: readers for the team datasets, table formats and conversions, hard-negative mining, validation."""

from rerank_lib.data.beir import read_beir_corpus, read_beir_judgments, read_beir_listwise
from rerank_lib.data.embeddings import BiEncoder
from rerank_lib.data.formats import (
    Format,
    detect_format,
    graded_to_binary,
    listwise_to_pairs,
    listwise_to_reranking,
    ntuples_to_triplets,
    pairs_to_listwise,
    pairs_to_triplets,
    reranking_to_listwise,
    scale_labels,
    triplets_to_ntuples,
    triplets_to_pairs,
)
from rerank_lib.data.hard_negatives import mine_hard_negatives
from rerank_lib.data.hub import load_hub_dataset
from rerank_lib.data.list_negatives import add_negatives_to_lists
from rerank_lib.data.passages import join_consecutive_sentences
from rerank_lib.data.sick import read_sick, split_sick
from rerank_lib.data.splits import split_frame
from rerank_lib.data.sts import read_sts_benchmark
from rerank_lib.data.tables import TableOptions, read_table
from rerank_lib.data.teacher_labels import add_teacher_scores
from rerank_lib.data.validation import LOSS_INPUTS, ValidationReport, validate_for_loss
from rerank_lib.data.wikiqa import read_wikiqa_pairs, read_wikiqa_reranking_samples, read_wikiqa_test_pairs

__all__ = [
    "LOSS_INPUTS",
    "BiEncoder",
    "Format",
    "TableOptions",
    "ValidationReport",
    "add_negatives_to_lists",
    "add_teacher_scores",
    "detect_format",
    "graded_to_binary",
    "join_consecutive_sentences",
    "listwise_to_pairs",
    "listwise_to_reranking",
    "load_hub_dataset",
    "mine_hard_negatives",
    "ntuples_to_triplets",
    "pairs_to_listwise",
    "pairs_to_triplets",
    "read_beir_corpus",
    "read_beir_judgments",
    "read_beir_listwise",
    "read_sick",
    "read_sts_benchmark",
    "read_table",
    "read_wikiqa_pairs",
    "read_wikiqa_reranking_samples",
    "read_wikiqa_test_pairs",
    "reranking_to_listwise",
    "scale_labels",
    "split_frame",
    "split_sick",
    "triplets_to_ntuples",
    "triplets_to_pairs",
    "validate_for_loss",
]
