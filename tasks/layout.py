"""The fixed artifact layout that stages use to hand work to each other (see DESIGN.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The pipeline's stages in order; importable without loading torch or the stages themselves.
STAGE_ORDER = ("prepare", "train", "package", "evaluate", "card", "register", "push")


@dataclass(frozen=True)
class Layout:
    """Every path a stage reads or writes, relative to one project root."""

    root: Path

    @property
    def params(self) -> Path:
        return self.root / "params.yaml"

    @property
    def raw(self) -> Path:
        return self.root / "data" / "raw"

    @property
    def prepared(self) -> Path:
        """One folder per catalog dataset: ``data/prepared/<name>/``."""
        return self.root / "data" / "prepared"

    @property
    def bm25_cache(self) -> Path:
        """BM25 indexes of BEIR corpora, shared by evaluation during training and the evaluate stage."""
        return self.root / ".cache" / "bm25"

    @property
    def score_cache(self) -> Path:
        """Scores that do not depend on trained weights (baselines, priors, teachers), reused by the next run."""
        return self.root / ".cache" / "scores"

    @property
    def checkpoints(self) -> Path:
        return self.root / "artifacts" / "checkpoints"

    @property
    def trained_model(self) -> Path:
        """The model as training left it; the card stage turns it into ``model`` with its README."""
        return self.root / "artifacts" / "trained"

    @property
    def packaged(self) -> Path:
        """What ships, as the package stage chose on dev: the cross-encoder folder alone or a rerank package."""
        return self.root / "artifacts" / "packaged"

    @property
    def dev_dir(self) -> Path:
        """The package stage's choice on the dev suite (``package.json``)."""
        return self.root / "artifacts" / "dev"

    @property
    def tune_dir(self) -> Path:
        """Tune studies (``<study>.db`` and trial folders) and their result, ``best.yaml``."""
        return self.root / "artifacts" / "tune"

    @property
    def eval_dir(self) -> Path:
        return self.root / "artifacts" / "eval"

    @property
    def metrics(self) -> Path:
        return self.eval_dir / "metrics.json"

    @property
    def model(self) -> Path:
        return self.root / "artifacts" / "model"

    @property
    def card(self) -> Path:
        return self.model / "README.md"

    @property
    def registry_record(self) -> Path:
        return self.root / "artifacts" / "registry.json"

    @property
    def push_record(self) -> Path:
        return self.root / "artifacts" / "push.json"
