"""Data tools: table and BEIR readers, table formats and conversions, hard-negative mining, validation."""

from rerank_lib.data.beir import read_beir_corpus, read_beir_judgments, read_beir_listwise
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
from rerank_lib.data.splits import split_frame
from rerank_lib.data.tables import TableOptions, read_table
from rerank_lib.data.teacher_labels import add_teacher_scores
from rerank_lib.data.validation import LOSS_INPUTS, ValidationReport, validate_for_loss

__all__ = [
    "LOSS_INPUTS",
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
    "read_table",
    "reranking_to_listwise",
    "scale_labels",
    "split_frame",
    "triplets_to_ntuples",
    "triplets_to_pairs",
    "validate_for_loss",
]
