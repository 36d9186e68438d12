"""A cross-encoder whose scores are mixed with a bi-encoder's: the reranker keeps what its first stage knew.

Fine-tuned on a few thousand questions, a cross-encoder learns to find the answer among related passages but loses
part of the topical knowledge its bi-encoder base was trained with (docs/recipe.md, "Where the models fail"): it
can put an off-topic passage that shares a word with the question above the answer. Mixing in the bi-encoder's
cosine keeps that knowledge; the mix is the standard "interpolate the reranker with the retriever" practice, with
the zero-shot bi-encoder as the retriever.

The mix is linear and per pair: ``(1 - prior_share) * cross-encoder score + prior_share * cosine``, the
cross-encoder's score after its activation (a sigmoid probability for a one-output model): a
:class:`~rerank_lib.mixed_scorer.MixedScorer` without normalisation. A pair's score does not depend on the other
candidates, so single pairs can be scored and scores compare across queries.

The fused model is saved as a normal cross-encoder folder (loadable by :class:`~rerank_lib.CrossEncoder` and by
the reference toolkit, which then score with the cross-encoder alone) plus ``score_fusion.json`` and a copy of the
bi-encoder in ``score_fusion_prior/``; :func:`rerank_lib.load_reranker` returns a :class:`FusedReranker` for such a
folder. Such a folder has two faces, so the pipeline no longer ships one: it ships a cross-encoder alone or a
:mod:`rerank_lib.package` (which nothing loads as a plain cross-encoder); this format stays readable for models
saved before.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rerank_lib.atomic import build_directory_atomic, write_text_atomic
from rerank_lib.bi_encoder import BiEncoder, BiEncoderScorer
from rerank_lib.errors import ModelLoadError
from rerank_lib.mixed_scorer import MixedScorer, Normalization
from rerank_lib.model import CrossEncoder, ranking
from rerank_lib.scorer import Scorer

FUSION_FILE = "score_fusion.json"
PRIOR_FOLDER = "score_fusion_prior"
LINEAR_MIX = "linear"


@dataclass(frozen=True)
class ScoreFusion:
    """What ``score_fusion.json`` records: the prior's share of the mix and where the prior lives."""

    prior_share: float
    prior: str = "bi-encoder"
    prior_folder: str = PRIOR_FOLDER
    prior_max_length: int = 256
    mix: str = LINEAR_MIX

    def __post_init__(self) -> None:
        if not 0.0 <= self.prior_share <= 1.0:
            raise ValueError(f"prior_share must lie in [0, 1] (the bi-encoder's share); got {self.prior_share}.")
        if self.prior != "bi-encoder" or self.mix != LINEAR_MIX:
            raise ValueError(
                f"unsupported score fusion: prior {self.prior!r}, mix {self.mix!r} "
                f"(supported: 'bi-encoder', {LINEAR_MIX!r})."
            )

    @classmethod
    def read(cls, model_dir: Path) -> ScoreFusion:
        """The fusion recorded in ``model_dir``; a bad file is named with the key that is wrong."""
        path = Path(model_dir) / FUSION_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (json.JSONDecodeError, TypeError, ValueError) as error:
            raise ModelLoadError(f"{path}: not a valid score fusion file: {error}") from error


class FusedReranker(MixedScorer):
    """``(1 - prior_share) * cross-encoder score + prior_share * bi-encoder cosine``, pair by pair.

    Args:
        cross_encoder: the fine-tuned reranker (or any :class:`~rerank_lib.scorer.Scorer`, e.g. a cached one).
        prior: the bi-encoder: a folder, a loaded :class:`BiEncoder`, or a scorer with ``predict(pairs)`` and
            ``encoder`` (a :class:`BiEncoderScorer`, possibly cached).
        prior_share: the bi-encoder's weight in [0, 1]; 0 ranks as the cross-encoder alone, 1 as the bi-encoder.
    """

    def __init__(
        self,
        cross_encoder: CrossEncoder | Scorer,
        prior: BiEncoderScorer | BiEncoder | str | os.PathLike | Scorer,
        prior_share: float,
        prior_max_length: int = 256,
    ) -> None:
        self.fusion = ScoreFusion(prior_share=prior_share, prior_max_length=prior_max_length)
        if isinstance(prior, (str, os.PathLike, BiEncoder)):
            prior = BiEncoderScorer(prior if isinstance(prior, BiEncoder) else str(prior), prior_max_length)
        super().__init__([cross_encoder, prior], [1 - prior_share, prior_share], Normalization.NONE)

    @property
    def cross_encoder(self) -> CrossEncoder | Scorer:
        return self.parts[0]

    @cross_encoder.setter
    def cross_encoder(self, scorer: CrossEncoder | Scorer) -> None:
        self.parts[0] = scorer

    @property
    def prior(self) -> BiEncoderScorer | Scorer:
        return self.parts[1]

    @prior.setter
    def prior(self, scorer: BiEncoderScorer | Scorer) -> None:
        self.parts[1] = scorer

    @property
    def prior_share(self) -> float:
        return self.fusion.prior_share

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **cross_encoder_kwargs: Any) -> FusedReranker:
        """Load a folder written by :meth:`save_pretrained` (or by :func:`attach_score_fusion`)."""
        folder = Path(path)
        fusion = ScoreFusion.read(folder)
        prior = folder / fusion.prior_folder
        if not prior.is_dir():
            raise ModelLoadError(f"{folder / FUSION_FILE} names the prior folder {prior}, which does not exist.")
        cross_encoder = CrossEncoder(str(folder), **cross_encoder_kwargs)
        try:
            return cls(cross_encoder, prior, fusion.prior_share, fusion.prior_max_length)
        except ModelLoadError as error:
            raise ModelLoadError(f"The score-fusion prior of {folder} cannot be loaded: {error}") from error

    def rank(
        self,
        query: str,
        documents: Sequence[str],
        top_k: int | None = None,
        return_documents: bool = False,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
    ) -> list[dict[str, Any]]:
        """Rank documents for one query, best first: ``[{"corpus_id", "score"[, "text"]}]`` (as CrossEncoder.rank)."""
        scores = self.predict([(query, doc) for doc in documents], batch_size, show_progress_bar)
        return ranking(scores, documents, top_k, return_documents)

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """The cross-encoder folder, then the prior and ``score_fusion.json`` added to it."""
        self.cross_encoder.save_pretrained(path)
        encoder = self.prior.encoder
        attach_score_fusion(path, encoder, self.prior_share, self.fusion.prior_max_length)

    save = save_pretrained


def attach_score_fusion(
    model_dir: str | os.PathLike,
    prior: BiEncoder | str | os.PathLike,
    prior_share: float,
    prior_max_length: int = 256,
) -> Path:
    """Add a bi-encoder prior to a saved cross-encoder folder; returns the written ``score_fusion.json``.

    A local prior folder is copied whole (a sentence-transformers folder stays one); anything else is loaded and
    saved with transformers. The JSON is written last, so a folder with it always has its prior complete.
    """
    folder = Path(model_dir)
    fusion = ScoreFusion(prior_share=prior_share, prior_max_length=prior_max_length)  # bad share fails first
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"{folder} is not a saved cross-encoder folder (no config.json)")
    (folder / FUSION_FILE).unlink(missing_ok=True)  # an old fusion must not describe a half-replaced prior

    def write(staging: Path) -> None:
        if isinstance(prior, BiEncoder):
            prior.model.save_pretrained(staging)
            prior.tokenizer.save_pretrained(staging)
        elif Path(prior).is_dir():
            shutil.copytree(Path(prior), staging, dirs_exist_ok=True)
        else:
            loaded = BiEncoder(str(prior))
            loaded.model.save_pretrained(staging)
            loaded.tokenizer.save_pretrained(staging)

    build_directory_atomic(folder / fusion.prior_folder, write)
    target = folder / FUSION_FILE
    write_text_atomic(target, json.dumps(asdict(fusion), indent=2) + "\n")
    return target


def remove_score_fusion(model_dir: str | os.PathLike) -> None:
    """Make a fused folder a plain cross-encoder folder again (the JSON goes first, then the prior)."""
    folder = Path(model_dir)
    if (folder / FUSION_FILE).is_file():
        prior_folder = ScoreFusion.read(folder).prior_folder
        (folder / FUSION_FILE).unlink()
        shutil.rmtree(folder / prior_folder, ignore_errors=True)
