"""A rerank package: a cross-encoder and a first stage whose scores are mixed, shipped as one folder with one loader.

When the pipeline chooses (on dev data) to mix a first-stage score into the reranker's, what ships is a package::

    <folder>/rerank_package.json   what scores what (below)
    <folder>/cross_encoder/        a plain cross-encoder folder: loaded alone, it scores alone
    <folder>/first_stage/          the bi-encoder whose cosine is mixed in (a bm25 first stage has none)

The top folder holds no ``config.json``, so neither :class:`~rerank_lib.CrossEncoder` nor the reference toolkit
loads it as a cross-encoder: nothing that loads as a plain cross-encoder scores differently from what was
evaluated under that name. :func:`load_reranker` (and the MLflow pyfunc built on it) is how a package is offered.

**Scale.** The cross-encoder's logit and the first stage's score live on different scales, so each is put on a
common one before the mix ``(1 - share) * cross-encoder + share * first stage``
(:class:`~rerank_lib.mixed_scorer.MixedScorer`). Two rules, recorded as ``normalization``:

* ``dev-standard`` (what the pipeline writes for a bi-encoder first stage): each score is standardised with the mean
  and standard deviation measured over the dev candidates when the package was chosen (``scales``), and the score is
  the logistic function of the mix, so it lies in (0, 1) as a cross-encoder's does. A pair's score depends on that
  pair only: a lone pair scores as it does among its query's candidates, scores compare across
  queries (thresholds, classification, one pair per request all work). A first-stage score passed in
  (``first_stage_scores=``) must be on the packaged first stage's scale (its cosine).
* ``query-min-max`` (for a BM25 first stage, whose scores depend on the candidates of the call, and packages written
  before ``dev-standard``): each score is min-max scaled over one query's candidates in the call. Nothing is
  fitted and a retriever's score on any scale can be passed in, but the scores only rank one query's candidates:
  they do not compare across queries, and a lone candidate scores 0.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from rerank_lib.atomic import build_directory_atomic
from rerank_lib.bi_encoder import BiEncoder, BiEncoderScorer
from rerank_lib.errors import ModelLoadError
from rerank_lib.fusion import FUSION_FILE, PRIOR_FOLDER, FusedReranker
from rerank_lib.mixed_scorer import MixedScorer, Normalization
from rerank_lib.model import CrossEncoder, ranking
from rerank_lib.model_files import check_model_folder, looks_local
from rerank_lib.retrieval.bm25_scorer import BM25Scorer
from rerank_lib.scorer import Pairs, PairScorer, Scorer

PACKAGE_FILE = "rerank_package.json"
CROSS_ENCODER_FOLDER = "cross_encoder"
FIRST_STAGE_FOLDER = "first_stage"
FIRST_STAGES = ("bi-encoder", "bm25")
PACKAGE_FORMAT = 1
DEV_STANDARD = "dev-standard"
QUERY_MIN_MAX = Normalization.QUERY_MIN_MAX.value
PACKAGE_SCALES = (DEV_STANDARD, QUERY_MIN_MAX)
SCALED_PARTS = ("cross_encoder", "first_stage")


def check_scales(scales: dict[str, list[float]] | None) -> None:
    """A ``[mean, std]`` with a finite mean and a positive std for each part: what ``dev-standard`` divides by."""
    if not isinstance(scales, dict) or sorted(scales) != sorted(SCALED_PARTS):
        raise ValueError(f"normalization {DEV_STANDARD!r} needs scales for {list(SCALED_PARTS)}; got {scales!r}.")
    for part, pair in scales.items():
        if len(pair) != 2 or not np.isfinite(pair[0]) or not (np.isfinite(pair[1]) and pair[1] > 0):
            raise ValueError(f"scales[{part!r}] must be [mean, std] with std > 0; got {pair!r}.")


def standard_scale(scores: Sequence[float] | np.ndarray) -> list[float]:
    """``[mean, std]`` of scores (the std of a constant set is taken as 1: nothing to spread)."""
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError("a package scale needs at least one score, all finite")
    spread = float(values.std())
    return [float(values.mean()), spread if spread > 0 else 1.0]


@dataclass(frozen=True)
class PackageSpec:
    """What ``rerank_package.json`` records."""

    share: float
    first_stage: str = "bi-encoder"
    first_stage_model: str | None = None  # where the bi-encoder came from (informational: the card names it)
    first_stage_max_length: int = 256
    normalization: str = QUERY_MIN_MAX
    cross_encoder_score: str = "logit"
    scales: dict[str, list[float]] | None = None  # dev-standard: {"cross_encoder"|"first_stage": [mean, std]}
    format: int = PACKAGE_FORMAT

    def __post_init__(self) -> None:
        if not 0.0 < self.share < 1.0:
            raise ValueError(f"share must lie in (0, 1) (the first stage's weight); got {self.share}.")
        if self.first_stage not in FIRST_STAGES:
            raise ValueError(f"first_stage must be one of {FIRST_STAGES}; got {self.first_stage!r}.")
        if self.normalization not in PACKAGE_SCALES or self.cross_encoder_score != "logit":
            raise ValueError(f"unsupported package scale: {self.normalization!r} of the {self.cross_encoder_score!r}.")
        if self.normalization == DEV_STANDARD:
            check_scales(self.scales)
            if self.first_stage == "bm25":
                raise ValueError(
                    "a BM25 first stage scores against the candidates of each call, so no scale measured beforehand "
                    f"fits it: use normalization {QUERY_MIN_MAX!r}."
                )
        elif self.scales is not None:
            raise ValueError(f"scales belong to normalization {DEV_STANDARD!r}, not {self.normalization!r}.")
        if self.format != PACKAGE_FORMAT:
            raise ValueError(f"package format {self.format} is newer than this library reads ({PACKAGE_FORMAT}).")

    @classmethod
    def read(cls, folder: Path) -> PackageSpec:
        path = Path(folder) / PACKAGE_FILE
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, TypeError, ValueError) as error:
            raise ModelLoadError(f"{path}: not a valid rerank package file: {error}") from error


class CrossEncoderLogits(PairScorer):
    """A cross-encoder's raw logit per pair (no activation): the linear scale the package standardises or scales."""

    def __init__(self, cross_encoder: CrossEncoder) -> None:
        self.cross_encoder = cross_encoder

    def score(self, pairs: list[tuple[str, str]], batch_size: int, show_progress_bar: bool | None) -> np.ndarray:
        logits = self.cross_encoder.predict(
            pairs, batch_size=batch_size, show_progress_bar=show_progress_bar, activation_fn=nn.Identity()
        )
        return np.asarray(logits, dtype=np.float64)


class Sigmoid(PairScorer):
    """The logistic function of another scorer's scores: a cross-encoder's probability from its cached logits."""

    def __init__(self, logits: Scorer) -> None:
        self.logits = logits

    def score(self, pairs: list[tuple[str, str]], batch_size: int, show_progress_bar: bool | None) -> np.ndarray:
        values = np.asarray(self.logits.predict(pairs, batch_size=batch_size, show_progress_bar=show_progress_bar))
        return 1.0 / (1.0 + np.exp(-values.astype(np.float64)))


class _GivenScores(PairScorer):
    """Scores the caller already has, one per pair of the call (a retriever's cosine, a BM25 score)."""

    def __init__(self, scores: Sequence[float]) -> None:
        self.scores = np.asarray(scores, dtype=np.float64)

    def score(self, pairs: list[tuple[str, str]], batch_size: int, show_progress_bar: bool | None) -> np.ndarray:
        if len(self.scores) != len(pairs):
            raise ValueError(f"first_stage_scores has {len(self.scores)} values for {len(pairs)} pairs.")
        if not np.all(np.isfinite(self.scores)):
            raise ValueError("first_stage_scores must be finite numbers.")
        return self.scores


class RerankPackage(PairScorer):
    """``(1 - share) * cross-encoder + share * first stage``, each on the scale ``spec.normalization`` names.

    Args:
        cross_encoder: the cross-encoder's logits (:class:`CrossEncoderLogits`, possibly cached).
        first_stage: the first stage's scorer (a :class:`BiEncoderScorer` or :class:`BM25Scorer`).
        spec: the share and what the first stage is.
    """

    default_batch_size = 32

    def __init__(self, cross_encoder: Scorer, first_stage: Scorer, spec: PackageSpec) -> None:
        self.cross_encoder = cross_encoder
        self.first_stage = first_stage
        self.spec = spec

    @property
    def share(self) -> float:
        return self.spec.share

    def predict(
        self,
        sentences: Pairs,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        first_stage_scores: Sequence[float] | None = None,
        **_: Any,
    ) -> np.ndarray:
        """Scores in input order; ``first_stage_scores`` (one per pair) replace the first stage's own."""
        first = self.first_stage if first_stage_scores is None else _GivenScores(first_stage_scores)
        parts, weights = [self.cross_encoder, first], [1 - self.share, self.share]
        mix: Scorer
        if self.spec.normalization == DEV_STANDARD:
            assert self.spec.scales is not None
            scales = [tuple(self.spec.scales[part]) for part in SCALED_PARTS]
            # The logistic of the standardised mix: a score in (0, 1), as a cross-encoder's.
            mix = Sigmoid(MixedScorer(parts, weights, Normalization.FIXED, scales))  # type: ignore[arg-type]
        else:
            mix = MixedScorer(parts, weights, Normalization.QUERY_MIN_MAX)
        return mix.predict(sentences, batch_size or self.default_batch_size, show_progress_bar)

    def score(self, pairs: list[tuple[str, str]], batch_size: int, show_progress_bar: bool | None) -> np.ndarray:
        return self.predict(pairs, batch_size, show_progress_bar)

    def rank(
        self,
        query: str,
        documents: Sequence[str],
        top_k: int | None = None,
        return_documents: bool = False,
        batch_size: int = 32,
        first_stage_scores: Sequence[float] | None = None,
    ) -> list[dict[str, Any]]:
        """Rank documents for one query, best first: ``[{"corpus_id", "score"[, "text"]}]`` (as CrossEncoder.rank)."""
        pairs = [(query, document) for document in documents]
        scores = self.predict(pairs, batch_size, first_stage_scores=first_stage_scores)
        return ranking(scores, documents, top_k, return_documents)

    @classmethod
    def from_folder(cls, path: str | os.PathLike, **cross_encoder_kwargs: Any) -> RerankPackage:
        folder = Path(path)
        spec = PackageSpec.read(folder)
        cross_encoder = CrossEncoder(str(folder / CROSS_ENCODER_FOLDER), **cross_encoder_kwargs)
        if spec.first_stage == "bm25":
            return cls(CrossEncoderLogits(cross_encoder), BM25Scorer(), spec)
        try:
            first_stage = BiEncoderScorer(str(folder / FIRST_STAGE_FOLDER), spec.first_stage_max_length)
        except ModelLoadError as error:
            raise ModelLoadError(f"The first stage of the package {folder} cannot be loaded: {error}") from error
        return cls(CrossEncoderLogits(cross_encoder), first_stage, spec)


def write_package(
    out: str | os.PathLike,
    cross_encoder: str | os.PathLike,
    spec: PackageSpec,
    bi_encoder: Any = None,
    extra_files: Sequence[str | os.PathLike] = (),
) -> Path:
    """Write a package folder (atomically): the cross-encoder folder copied in, the bi-encoder beside it, the spec.

    ``bi_encoder`` (for a bi-encoder first stage): a model folder (copied whole) or a loaded :class:`BiEncoder`.
    ``extra_files`` are copied into the top folder (e.g. a training summary).
    """
    if spec.first_stage == "bi-encoder" and bi_encoder is None:
        raise ValueError("a bi-encoder first stage needs the bi-encoder to ship with the package")
    check_model_folder(Path(cross_encoder))

    def write(staging: Path) -> None:
        shutil.copytree(Path(cross_encoder), staging / CROSS_ENCODER_FOLDER)
        if spec.first_stage == "bi-encoder":
            target = staging / FIRST_STAGE_FOLDER
            if isinstance(bi_encoder, BiEncoder):
                bi_encoder.model.save_pretrained(target)
                bi_encoder.tokenizer.save_pretrained(target)
            else:
                shutil.copytree(Path(bi_encoder), target)
        for extra in extra_files:
            shutil.copy2(Path(extra), staging / Path(extra).name)
        (staging / PACKAGE_FILE).write_text(json.dumps(asdict(spec), indent=2) + "\n", encoding="utf-8")

    build_directory_atomic(Path(out), write)
    return Path(out)


def is_package(path: str | os.PathLike) -> bool:
    return Path(path, PACKAGE_FILE).is_file()


def load_reranker(
    path: str | os.PathLike, endpoint: str | None = None, **cross_encoder_kwargs: Any
) -> CrossEncoder | RerankPackage | FusedReranker:
    """A folder or Hub repo as it was evaluated: a :class:`RerankPackage`, a plain :class:`CrossEncoder`, or (folders
    written before packages existed) a :class:`~rerank_lib.fusion.FusedReranker`.

    ``cross_encoder_kwargs`` go to :class:`CrossEncoder`; its ``revision``, ``token``, ``cache_dir`` and
    ``local_files_only`` also fetch a Hub repo's other files (from ``endpoint``, default ``HF_ENDPOINT``).
    """
    if looks_local(path) and not is_package(Path(path).expanduser()):
        check_model_folder(Path(path).expanduser())  # a path on this machine is never looked up on the Hub
    folder: Path | None
    if Path(path).is_dir():
        folder = Path(path)
        if not (folder / FUSION_FILE).is_file() and (folder / PRIOR_FOLDER).exists():
            raise ModelLoadError(
                f"{path} holds {PRIOR_FOLDER}/ but no {FUSION_FILE}: an incomplete copy of a fused model. Copy "
                f"{FUSION_FILE} too, or delete {PRIOR_FOLDER}/ to score with the cross-encoder alone."
            )
    else:
        folder = _hub_snapshot(str(path), cross_encoder_kwargs, endpoint)
    if folder is not None and is_package(folder):
        return RerankPackage.from_folder(folder, **cross_encoder_kwargs)
    if folder is not None and (folder / FUSION_FILE).is_file():
        return FusedReranker.from_pretrained(folder, **cross_encoder_kwargs)
    return CrossEncoder(str(path), **cross_encoder_kwargs)


def _hub_snapshot(repo_id: str, kwargs: dict[str, Any], endpoint: str | None = None) -> Path | None:
    """The local snapshot of a Hub repo pushed as a package (or with a fusion); None for a plain cross-encoder.

    Every file of the repo is fetched at one commit (the parts live in subfolders), so the parts always come from
    the same push.
    """
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

    hub: dict[str, Any] = {key: kwargs.get(key) for key in ("revision", "token", "cache_dir")}
    hub |= {"endpoint": endpoint, "local_files_only": bool(kwargs.get("local_files_only", False))}
    for marker in (PACKAGE_FILE, FUSION_FILE):
        try:
            found = Path(hf_hub_download(repo_id, marker, **hub))
            if hub["local_files_only"]:
                return found.parent
            info = HfApi(endpoint=endpoint, token=hub["token"]).model_info(repo_id, revision=hub["revision"])
            pinned = hub | {"revision": info.sha}
            for sibling in info.siblings or []:
                hf_hub_download(repo_id, sibling.rfilename, **pinned)
            return Path(hf_hub_download(repo_id, marker, **pinned)).parent
        except EntryNotFoundError:
            continue
        except (HfHubHTTPError, OSError, ValueError) as error:
            raise ModelLoadError(f"Cannot load {repo_id}: {error}") from error
    return None
