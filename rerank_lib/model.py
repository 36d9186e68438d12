"""The CrossEncoder: a transformers sequence classifier that scores (query, passage) pairs.

Model files are plain Hugging Face sequence-classification folders with the activation recorded in
``config.json["sentence_transformers"]`` so that sentence-transformers and this library load each other's models.
The same section records the prompts, a causal-LM reranker's template (:mod:`rerank_lib.causal_lm`) and whether the
folder holds a PEFT adapter (:mod:`rerank_lib.adapters`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
)

from rerank_lib.activation import activation_from_path, activation_to_path, default_activation
from rerank_lib.adapters import add_adapter, is_peft_model, load_adapter, merge_adapter, read_adapter_base
from rerank_lib.atomic import build_directory_atomic
from rerank_lib.backends._common import check_backend_options
from rerank_lib.batching import batch_count, pad_features, token_sorted_batches
from rerank_lib.causal_lm import LogitScore, LogitScoreConfig, is_causal_lm_config
from rerank_lib.errors import ConfigError, ModelLoadError
from rerank_lib.model_files import check_model_folder, check_tokenizer_fits, damaged_weights_file, looks_local
from rerank_lib.prompts import PromptSettings, with_prompts
from rerank_lib.version import __version__

logger = logging.getLogger(__name__)

Pair = tuple[str, str] | list[str]
ST_CONFIG_KEY = "sentence_transformers"
ST_CONFIG_FILE = "config_sentence_transformers.json"
MODEL_CARD_FILE = "README.md"


def _is_sequence_classifier(config: PretrainedConfig) -> bool:
    return any(arch.endswith("ForSequenceClassification") for arch in (config.architectures or []))


def _default_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _read_st_file(model_dir: Path) -> dict[str, Any]:
    """sentence-transformers' ``config_sentence_transformers.json`` of a local folder ({} when absent or broken)."""
    st_file = model_dir / ST_CONFIG_FILE
    if not st_file.is_file():
        return {}
    try:
        data = json.loads(st_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _read_st_activation_path(model_dir: Path, config: PretrainedConfig) -> str | None:
    """The activation import path saved by us or by sentence-transformers (old and >= 5.4 layouts)."""
    st_section = getattr(config, ST_CONFIG_KEY, None)
    if isinstance(st_section, dict) and st_section.get("activation_fn"):
        return str(st_section["activation_fn"])
    data = _read_st_file(model_dir)
    for key in ("activation_fn", "default_activation_function"):
        if isinstance(data.get(key), str):
            return data[key]
    nested = data.get("model_kwargs") or {}
    if isinstance(nested, dict) and isinstance(nested.get("activation_fn"), str):
        return nested["activation_fn"]
    return None


def _load_config(source: str, hub_kwargs: dict[str, Any], config_kwargs: dict[str, Any]) -> PretrainedConfig:
    try:
        return AutoConfig.from_pretrained(source, **hub_kwargs, **config_kwargs)
    except (OSError, ValueError) as error:
        where = "" if Path(source).is_dir() else " (not a local folder, and the Hugging Face Hub could not provide it)"
        raise ModelLoadError(f"Cannot load the model config of {source}{where}: {error}") from error


def _load_tokenizer(source: str, hub_kwargs: dict[str, Any], tokenizer_kwargs: dict[str, Any]) -> Any:
    try:
        return AutoTokenizer.from_pretrained(source, **hub_kwargs, **tokenizer_kwargs)
    except Exception as error:  # tokenizers raises its own exception types for damaged files
        raise ModelLoadError(f"Cannot load the tokenizer of {source} (missing or damaged files?): {error}") from error


def _saved_settings(model_dir: Path, config: PretrainedConfig) -> dict[str, Any]:
    """Our ``config.json`` section, with sentence-transformers' prompts file filling what it lacks."""
    section = getattr(config, ST_CONFIG_KEY, None)
    saved = dict(section) if isinstance(section, dict) else {}
    if model_dir.is_dir() and "prompts" not in saved:
        st_file = _read_st_file(model_dir)
        saved.update({key: st_file[key] for key in ("prompts", "default_prompt_name") if key in st_file})
    return saved


def ranking(
    scores: Sequence[float] | np.ndarray, documents: Sequence[str], top_k: int | None, return_documents: bool
) -> list[dict[str, Any]]:
    """One query's documents best first, as ``rank()`` returns them: ``[{"corpus_id", "score"[, "text"]}]``."""
    results = [{"corpus_id": i, "score": float(score)} for i, score in enumerate(scores)]
    if return_documents:
        for item in results:
            item["text"] = documents[item["corpus_id"]]
    results.sort(key=lambda item: item["score"], reverse=True)
    return results[:top_k] if top_k is not None else results


class CrossEncoder(nn.Module):
    """Scores text pairs jointly with one transformer; the standard reranker after a fast first stage.

    Args:
        model_name_or_path: a local folder or a Hugging Face Hub id.
        num_labels: outputs of the scoring head. Default: the checkpoint's value for a sequence classifier,
            otherwise 1 (a new, untrained head is created).
        max_length: maximum tokens per pair. Default: the smaller of the tokenizer's limit and the model's
            position embeddings.
        activation_fn: applied to logits in ``predict``. Default: the saved one, else Sigmoid for 1 label and
            Identity otherwise.
        trust_remote_code: allow custom model code and activation functions outside ``torch``.
        allow_pickle: allow loading ``pytorch_model.bin`` (pickle) weights; off by default for safety.
        backend: ``"torch"``, ``"onnx"`` (ONNX Runtime) or ``"openvino"``: what runs ``predict``/``rank``. The
            first load exports ``onnx/model.onnx`` or ``openvino/openvino_model.xml`` next to the model and later
            loads reuse it (see :mod:`rerank_lib.backends`); needs the ``onnx``/``openvino`` extra.
        quantize: ``"int8"`` with ``backend="onnx"``: dynamic int8 quantization (``onnx/model_qint8.onnx``).
        precision: ``"fp32"`` or ``"bf16"``: the default precision of ``predict`` (torch and openvino backends).
            bf16 is used where the CPU has native bf16 (AVX512-BF16/AMX) or the GPU supports it, else fp32.
        num_threads: CPU threads for ``predict``: set only while it runs for torch (torch's count is process-wide),
            and as the session's thread count for ONNX Runtime/OpenVINO. None: the runtime's default.
        prompts: named prompts (``{"web": "Given a web search query, ..."}``), saved with the model; see
            :mod:`rerank_lib.prompts`. ``default_prompt_name`` applies to queries and
            ``default_document_prompt_name`` to documents when a call names none.
        logit_score: for a causal-LM checkpoint (``*ForCausalLM``, e.g. Qwen3-Reranker), the prompt template and
            answer tokens (:class:`~rerank_lib.causal_lm.LogitScoreConfig` or its dict). Default: the saved one,
            else Qwen3-Reranker's template with "yes"/"no".
        adapter_base_model: for a folder saved with a PEFT adapter, the base model to put it on, when not the one
            its ``adapter_config.json`` names (e.g. a base model moved to another folder).
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike,
        num_labels: int | None = None,
        max_length: int | None = None,
        activation_fn: nn.Module | None = None,
        device: str | None = None,
        cache_dir: str | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        local_files_only: bool = False,
        token: str | None = None,
        allow_pickle: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        backend: str = "torch",
        quantize: str | None = None,
        precision: str = "fp32",
        num_threads: int | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        default_document_prompt_name: str | None = None,
        logit_score: LogitScoreConfig | dict[str, Any] | None = None,
        adapter_base_model: str | None = None,
    ) -> None:
        super().__init__()
        check_backend_options(backend, quantize, precision, num_threads)
        source = str(model_name_or_path)
        hub_kwargs = {
            "cache_dir": cache_dir,
            "revision": revision,
            "local_files_only": local_files_only,
            "token": token,
            "trust_remote_code": trust_remote_code,
        }
        local_dir = Path(source).expanduser()
        if looks_local(source):
            check_model_folder(local_dir)  # a half-copied folder fails here, naming what is missing
            source = str(local_dir)

        config = _load_config(source, hub_kwargs, config_kwargs or {})
        saved = _saved_settings(local_dir, config)
        # Settings that can be wrong are checked before the weights load.
        self.prompt_settings = PromptSettings.from_saved(
            saved,
            {
                "prompts": prompts,
                "default_prompt_name": default_prompt_name,
                "default_document_prompt_name": default_document_prompt_name,
            },
        )
        self._call_prompts: tuple[str, str] | None = None
        causal = is_causal_lm_config(config)
        if causal and not isinstance(logit_score, LogitScoreConfig):
            logit_score = LogitScoreConfig.from_dict(logit_score or saved.get("logit_score") or {})
        is_classifier = _is_sequence_classifier(config)
        if causal:
            if num_labels not in (None, 1):
                raise ConfigError(
                    f"{source} is a causal-LM reranker with one score per pair; got num_labels={num_labels}."
                )
            if backend != "torch":
                raise ConfigError(f"backend={backend!r} exports sequence classifiers only; {source} is a causal LM.")
            num_labels = 1
        else:
            if num_labels is None:
                num_labels = config.num_labels if is_classifier else 1
            if num_labels != config.num_labels or not is_classifier:
                config.num_labels = num_labels
        self.new_parameters: set[str] = set()  # created at load (a new head): trained in full beside an adapter
        adapter_source = source if saved.get("adapter") else None
        self.model = self._load_weights(
            adapter_base_model or (source if adapter_source is None else read_adapter_base(source, hub_kwargs)),
            config,
            hub_kwargs,
            allow_pickle,
            model_kwargs or {},
            causal,
        )
        if adapter_source is not None:
            self.model = load_adapter(self.model, adapter_source, hub_kwargs)
        self.tokenizer = _load_tokenizer(source, hub_kwargs, tokenizer_kwargs or {})
        check_tokenizer_fits(self.tokenizer, config, source)
        self.logit_score: LogitScore | None = None
        if causal:
            self.logit_score = self._causal_scorer(logit_score)
        self.max_length = self._resolve_max_length(max_length)
        self.model_name_or_path = source
        self.trust_remote_code = trust_remote_code

        saved_path = _read_st_activation_path(local_dir, config) if local_dir.is_dir() else None
        if saved_path is None and not local_dir.is_dir():
            saved_path = self._read_hub_st_activation(source, config, hub_kwargs)
        if activation_fn is not None:
            self.activation_fn = activation_fn
        elif saved_path is not None:
            self.activation_fn = activation_from_path(saved_path, num_labels, trust_remote_code)
        else:
            self.activation_fn = default_activation(num_labels)

        # A trained cross-encoder keeps its card when saved untouched; a base model's card describes another model.
        card = local_dir / MODEL_CARD_FILE
        keep_card = (is_classifier or ST_CONFIG_KEY in config.to_dict()) and card.is_file()
        self.model_card_text: str | None = card.read_text(encoding="utf-8") if keep_card else None
        self.to(device or _default_device())
        # Loaded for inference, as transformers' from_pretrained leaves a model (the trainer switches to training
        # mode at every step). predict then never switches modes, so servers may call it from several threads:
        # a mode switch back to training by one call would turn dropout on inside another's forward pass.
        self.eval()
        self.precision = precision
        self.num_threads = num_threads
        self.backend = backend
        self._backend_runner = None
        if backend != "torch":
            from rerank_lib.backends import load_backend

            if is_peft_model(self.model):  # the exporters trace a plain model: fold the adapter in first
                merge_adapter(self)
            self._backend_runner = load_backend(self, backend, quantize, precision, num_threads, cache_dir)

    # ----- loading -----
    def _load_weights(
        self,
        source: str,
        config: PretrainedConfig,
        hub_kwargs: dict[str, Any],
        allow_pickle: bool,
        model_kwargs: dict[str, Any],
        causal: bool = False,
    ) -> nn.Module:
        use_safetensors = None if allow_pickle else True
        auto_class = AutoModelForCausalLM if causal else AutoModelForSequenceClassification
        try:
            model, info = auto_class.from_pretrained(
                source,
                config=config,
                use_safetensors=use_safetensors,
                output_loading_info=True,
                **hub_kwargs,
                **model_kwargs,
            )
        except OSError as error:
            hint = "" if allow_pickle else " (only safetensors weights are loaded unless allow_pickle=True)"
            raise ModelLoadError(f"Could not load model weights from {source}{hint}: {error}") from error
        except Exception as error:  # safetensors raises its own error types for truncated files
            weights = damaged_weights_file(source, error)
            if weights is not None or type(error).__name__ in {"SafetensorError", "HeaderTooLarge"}:
                raise ModelLoadError(f"Corrupted or truncated safetensors file {weights or source}: {error}") from error
            raise
        self.new_parameters = set(info.get("missing_keys") or ())
        return model

    def _causal_scorer(self, setting: LogitScoreConfig) -> LogitScore:
        """The causal LM's scorer; its prompts are padded on the left, so the last position is the answer's."""
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        return LogitScore(setting, self.tokenizer)

    @staticmethod
    def _read_hub_st_activation(source: str, config: PretrainedConfig, hub_kwargs: dict[str, Any]) -> str | None:
        st_section = getattr(config, ST_CONFIG_KEY, None)
        if isinstance(st_section, dict) and st_section.get("activation_fn"):
            return str(st_section["activation_fn"])
        try:
            from huggingface_hub import hf_hub_download

            path = hf_hub_download(
                source,
                ST_CONFIG_FILE,
                revision=hub_kwargs.get("revision"),
                cache_dir=hub_kwargs.get("cache_dir"),
                token=hub_kwargs.get("token"),
                local_files_only=hub_kwargs.get("local_files_only", False),
            )
        except Exception:  # the file is optional; any Hub failure means "not there"
            return None
        return _read_st_activation_path(Path(path).parent, config)

    def _resolve_max_length(self, requested: int | None) -> int:
        positions = getattr(self.model.config, "max_position_embeddings", None)
        tokenizer_limit = getattr(self.tokenizer, "model_max_length", None)
        limits = [v for v in (positions, tokenizer_limit) if isinstance(v, int) and 0 < v < 1_000_000]
        model_limit = min(limits) if limits else 512
        if requested is None:
            return model_limit
        if requested <= 0:
            raise ValueError(f"max_length must be positive, got {requested}.")
        if positions is not None and requested > positions:
            raise ValueError(
                f"max_length={requested} exceeds the model's position embeddings ({positions}) "
                f"of {self.model.config.name_or_path}."
            )
        return requested

    # ----- properties -----
    @property
    def config(self) -> PretrainedConfig:
        return self.model.config

    @property
    def num_labels(self) -> int:
        return 1 if self.logit_score is not None else int(self.model.config.num_labels)

    @property
    def has_adapter(self) -> bool:
        """Whether a PEFT adapter wraps the transformer (see :meth:`add_adapter`)."""
        return is_peft_model(self.model)

    @property
    def prompts(self) -> dict[str, str]:
        return self.prompt_settings.prompts

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ----- prompts -----
    @contextlib.contextmanager
    def using_prompts(
        self,
        prompt: str | None = None,
        prompt_name: str | None = None,
        document_prompt: str | None = None,
        document_prompt_name: str | None = None,
    ) -> Any:
        """Within the block, every scoring call (``predict``, ``tokenize``, the losses) uses these prompts."""
        previous = self._call_prompts
        self._call_prompts = self.prompt_settings.resolve(prompt, prompt_name, document_prompt, document_prompt_name)
        try:
            yield self._call_prompts
        finally:
            self._call_prompts = previous

    def current_prompts(self) -> tuple[str, str]:
        """The (query, document) prompt texts in force: a ``using_prompts`` block's, else the model's defaults."""
        return self._call_prompts if self._call_prompts is not None else self.prompt_settings.resolve()

    # ----- scoring -----
    def encode_pairs(self, first: Sequence[str], second: Sequence[str]) -> dict[str, list[list[int]]]:
        """Unpadded token ids of pairs with the prompts in force, truncated to ``max_length`` (longest side first)."""
        query_prompt, document_prompt = self.current_prompts()
        if self.logit_score is not None:
            return self.logit_score.encode(first, second, self.max_length, query_prompt, document_prompt)
        pairs = with_prompts(list(zip(first, second, strict=True)), query_prompt, document_prompt)
        encoding = self.tokenizer(
            [pair[0] for pair in pairs],
            [pair[1] for pair in pairs],
            truncation="longest_first",
            max_length=self.max_length,
        )
        names = list(getattr(self.tokenizer, "model_input_names", None) or ["input_ids", "attention_mask"])
        return {name: encoding[name] for name in names if name in encoding}

    def tokenize(self, pairs: Sequence[Pair]) -> dict[str, torch.Tensor]:
        """Tokenize pairs together, truncating the longer side first, on the model's device."""
        first = [str(pair[0]) for pair in pairs]
        second = [str(pair[1]) for pair in pairs]
        query_prompt, document_prompt = self.current_prompts()
        if self.logit_score is not None:
            encoded = self.logit_score.encode(first, second, self.max_length, query_prompt, document_prompt)
            padded = pad_features(self.tokenizer, encoded, np.arange(len(first)))
            return {name: torch.from_numpy(values).to(self.device) for name, values in padded.items()}
        if query_prompt or document_prompt:
            first = [query_prompt + text for text in first]
            second = [document_prompt + text for text in second]
        features = self.tokenizer(
            first,
            second,
            padding=True,
            truncation="longest_first",
            max_length=self.max_length,
            return_tensors="pt",
        )
        return {name: tensor.to(self.device) for name, tensor in features.items()}

    def forward(self, **features: torch.Tensor) -> torch.Tensor:
        """Raw logits of shape (batch, num_labels); a causal LM's are float32 answer-token log-odds."""
        if self.logit_score is not None:
            return self.logit_score.scores(self.model, features["input_ids"], features["attention_mask"])
        return self.model(**features, return_dict=True).logits

    def score_pairs(self, pairs: Sequence[Pair]) -> torch.Tensor:
        """Tokenize and score pairs with gradients: the entry point losses use."""
        return self(**self.tokenize(pairs))

    @staticmethod
    def _as_pair_list(sentences: Pair | Sequence[Pair]) -> tuple[list[Pair], bool]:
        if isinstance(sentences, (tuple, list)) and len(sentences) == 2 and all(isinstance(s, str) for s in sentences):
            return [sentences], True  # a single pair
        pairs = list(sentences)
        for index, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"predict expects pairs of two texts; item {index} is {pair!r}.")
        return pairs, False

    def _inference_context(self, precision: str) -> contextlib.AbstractContextManager:
        """bf16 autocast and the thread setting for torch; the other backends apply theirs in their sessions."""
        from rerank_lib.backends import check_precision, scoring_head, torch_inference

        check_precision(precision, self.backend)
        if self._backend_runner is not None:
            return contextlib.nullcontext()
        head = None
        if precision == "bf16":
            causal_head = self.model.get_output_embeddings() if self.logit_score is not None else None
            head = causal_head if causal_head is not None else scoring_head(self.model, self.num_labels)
        return torch_inference(self.device, precision, self.num_threads, head)

    def _batch_logits(self, features: dict[str, np.ndarray], precision: str) -> torch.Tensor:
        """One batch's logits from torch or from the exported backend (see ``backend`` in the class docstring)."""
        if self._backend_runner is None:
            return self(**{name: torch.from_numpy(values).to(self.device) for name, values in features.items()})
        return self._backend_runner.logits(features, precision)

    @torch.inference_mode()
    def predict(
        self,
        sentences: Pair | Sequence[Pair],
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        activation_fn: nn.Module | None = None,
        apply_softmax: bool = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        precision: str | None = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        document_prompt_name: str | None = None,
        document_prompt: str | None = None,
        devices: Sequence[str] | None = None,
        pool: Any = None,
        chunk_size: int | None = None,
    ) -> np.ndarray | torch.Tensor | list[torch.Tensor] | float:
        """Score pairs. Batches are built from pairs sorted by token count; results come back in input order.

        ``precision`` (``"fp32"``/``"bf16"``) overrides the model's ``precision`` for this call. Prompts: see
        :mod:`rerank_lib.prompts`. ``devices`` (e.g. ``["cpu", "cpu"]`` or ``["cuda:0", "cuda:1"]``) scores in one
        worker process per device, ``pool`` in the workers of a :meth:`start_multi_process_pool`; ``chunk_size`` pairs
        go to a worker at a time (see :mod:`rerank_lib.multi_process`). Logits are float32 before the activation.
        Several threads may call it at once while the model is in eval mode, as loaded; a model in training mode is
        switched to eval for the call and back, which is for one caller at a time.
        """
        pairs, single = self._as_pair_list(sentences)
        prompt_args = {
            "prompt": prompt,
            "prompt_name": prompt_name,
            "document_prompt": document_prompt,
            "document_prompt_name": document_prompt_name,
        }
        if pool is not None or devices:
            from rerank_lib.multi_process import predict_in_pool

            options = {"batch_size": batch_size, "activation_fn": activation_fn, "apply_softmax": apply_softmax}
            options |= {"precision": precision, **prompt_args}
            result = predict_in_pool(self, pairs, pool, devices, chunk_size, show_progress_bar, options)
            return _as_output(result, convert_to_numpy, convert_to_tensor, single)
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() <= logging.INFO and len(pairs) > batch_size
        activation = activation_fn if activation_fn is not None else self.activation_fn
        was_training = self.training
        self.eval()
        scores: list[torch.Tensor] = [None] * len(pairs)  # type: ignore[list-item]
        prompting = self.using_prompts(**prompt_args) if any(v is not None for v in prompt_args.values()) else None
        with prompting or contextlib.nullcontext():
            special = self.logit_score is not None or any(self.current_prompts())
            encode = self.encode_pairs if special else None  # the plain pair encoding stays the fast default
            batches = token_sorted_batches(self.tokenizer, pairs, self.max_length, batch_size, encode=encode)
            total = batch_count(len(pairs), batch_size)
            with self._inference_context(precision or self.precision):
                for batch in tqdm(batches, total=total, desc="Scoring", disable=not show_progress_bar):
                    logits = activation(self._batch_logits(batch.features, precision or self.precision).float())
                    if apply_softmax and logits.shape[1] > 1:
                        logits = torch.softmax(logits, dim=1)
                    logits = logits.float().cpu()
                    for row, original in enumerate(batch.indices):
                        scores[original] = logits[row]
        if was_training:
            self.train()
        if self.num_labels == 1:
            scores = [score[0] for score in scores]
        return _as_output(scores, convert_to_numpy, convert_to_tensor, single)

    def rank(
        self,
        query: str,
        documents: Sequence[str],
        top_k: int | None = None,
        return_documents: bool = False,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        document_prompt_name: str | None = None,
        document_prompt: str | None = None,
        devices: Sequence[str] | None = None,
        pool: Any = None,
    ) -> list[dict[str, Any]]:
        """Rank documents for one query, best first: ``[{"corpus_id", "score"[, "text"]}]``."""
        if self.num_labels != 1:
            raise ValueError(
                f"rank() needs a model with one output; this model has num_labels={self.num_labels}. "
                "Use predict() and pick the class you need."
            )
        scores = self.predict(
            [(query, doc) for doc in documents],
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            prompt_name=prompt_name,
            prompt=prompt,
            document_prompt_name=document_prompt_name,
            document_prompt=document_prompt,
            devices=devices,
            pool=pool,
        )
        return ranking(scores, documents, top_k, return_documents)

    def start_multi_process_pool(self, devices: Sequence[str] | None = None, num_threads: int | None = None) -> Any:
        """Worker processes, one per device (default: one per GPU, else 2 CPU processes), for ``predict(pool=)``.

        Stop it with :meth:`stop_multi_process_pool` (or use it as a context manager).
        """
        from rerank_lib.multi_process import PredictPool

        return PredictPool(self, devices, num_threads)

    @staticmethod
    def stop_multi_process_pool(pool: Any) -> None:
        pool.close()

    # ----- adapters -----
    def add_adapter(self, peft_config: Any) -> CrossEncoder:
        """Train through a PEFT adapter (e.g. ``peft.LoraConfig``); the scoring head trains in full beside it.

        See :mod:`rerank_lib.adapters`: ``save_pretrained`` then writes the adapter and the head, and the folder
        loads back with ``CrossEncoder(folder)``; :meth:`merge_adapter` folds it into a plain model.
        """
        add_adapter(self, peft_config)
        return self

    def merge_adapter(self) -> CrossEncoder:
        """Fold the adapter into the weights (``merge_and_unload``): saving then writes a plain model folder."""
        merge_adapter(self)
        return self

    # ----- saving -----
    def save_pretrained(self, path: str | os.PathLike, safe_serialization: bool = True) -> None:
        """Save weights (safetensors), tokenizer and config; the folder is replaced atomically.

        ``max_length`` is stored as the tokenizer's ``model_max_length`` (as the reference toolkit does), so a model
        trained on short pairs is also scored on short pairs after loading, not at the base model's 512 tokens. With
        an adapter, the folder holds the adapter and the scoring head (see :mod:`rerank_lib.adapters`).
        """
        build_directory_atomic(Path(path), partial(self.write_folder, safe_serialization=safe_serialization))

    def write_folder(self, folder: Path, safe_serialization: bool = True) -> None:
        """Write the model files into ``folder`` (created if needed); :meth:`save_pretrained` does it atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.model_max_length = self.max_length
        settings: dict[str, Any] = {"activation_fn": activation_to_path(self.activation_fn), "version": __version__}
        if self.prompt_settings.prompts:
            settings |= self.prompt_settings.to_dict()
        if self.logit_score is not None:
            settings["logit_score"] = self.logit_score.config.to_dict()
        if self.has_adapter:
            settings["adapter"] = True
        transformer = self.model.get_base_model() if self.has_adapter else self.model
        setattr(transformer.config, ST_CONFIG_KEY, settings)
        self.model.save_pretrained(folder, safe_serialization=safe_serialization)
        if self.has_adapter:  # peft writes the adapter only: the config says what to build it on
            transformer.config.architectures = [type(transformer).__name__]
            transformer.config.save_pretrained(folder)
            (folder / MODEL_CARD_FILE).unlink(missing_ok=True)  # peft's placeholder card
        self.tokenizer.save_pretrained(folder)
        if self.model_card_text is not None:
            (folder / MODEL_CARD_FILE).write_text(self.model_card_text, encoding="utf-8")

    save = save_pretrained

    # ----- legacy training -----
    def fit(
        self,
        train_dataloader: Any,
        loss_fct: nn.Module | None = None,
        evaluator: Any = None,
        epochs: int = 1,
        warmup_steps: int = 0,
        **kwargs: Any,
    ) -> Any:
        """The old training API, kept for old scripts; it runs on CrossEncoderTrainer.

        See :func:`rerank_lib.training.fit.fit` for the other options (scheduler, optimizer_params, output_path, ...).
        """
        from rerank_lib.training.fit import fit

        return fit(
            self,
            train_dataloader,
            loss_fct=loss_fct,
            evaluator=evaluator,
            epochs=epochs,
            warmup_steps=warmup_steps,
            **kwargs,
        )

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Upload the model folder to the Hub; see ``rerank_lib.hub.push_to_hub``."""
        from rerank_lib.hub import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)


def _as_output(
    scores: list[torch.Tensor] | torch.Tensor, convert_to_numpy: bool, convert_to_tensor: bool, single: bool
) -> np.ndarray | torch.Tensor | list[torch.Tensor] | float:
    """``predict``'s return value: one tensor, one array or the list of per-pair scores (one score for one pair)."""
    if isinstance(scores, torch.Tensor):
        stacked: torch.Tensor | None = scores
    else:
        stacked = torch.stack(scores) if scores else None
    if convert_to_tensor:
        result: Any = stacked if stacked is not None else torch.empty(0)
    elif convert_to_numpy:
        result = stacked.numpy() if stacked is not None else np.empty(0, dtype=np.float32)
    else:
        result = list(stacked) if stacked is not None else []
    return result[0] if single else result
