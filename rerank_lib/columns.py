"""Column names shared by the data tools and the trainer: the table formats' columns and the label columns.

The losses read text columns by position and the label from the first column named in :data:`LABEL_COLUMNS`; the
data tools write tables in that layout and check them against it, so both read the names from here.
"""

QUERY, DOCUMENT, LABEL = "query", "document", "label"
POSITIVE, NEGATIVE = "positive", "negative"
DOCUMENTS, LABELS = "documents", "labels"
PAIR_COLUMNS = [QUERY, DOCUMENT, LABEL]
TRIPLET_COLUMNS = [QUERY, POSITIVE, NEGATIVE]
LISTWISE_COLUMNS = [QUERY, DOCUMENTS, LABELS]
RERANKING_COLUMNS = [QUERY, POSITIVE, NEGATIVE]

# Where a training row's label is read from: the first of these present in the row.
LABEL_COLUMNS = (LABEL, LABELS, "score", "scores")
# Set on rows of a multi-dataset batch: which dataset (and so which loss) the batch belongs to; not a text column.
DATASET_NAME_KEY = "dataset_name"


def ntuple_columns(num_negatives: int) -> list[str]:
    """``query, positive, negative_1 .. negative_n``: the n-tuple format's columns."""
    return [QUERY, POSITIVE, *(f"{NEGATIVE}_{i}" for i in range(1, num_negatives + 1))]
