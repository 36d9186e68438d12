"""ONNX backend: export on first load, reuse afterwards, fp32 parity with torch, int8 quantization, clear errors."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from backend_testkit import DOCUMENTS, PAIRS, QUERIES
from scipy.stats import spearmanr

import rerank_lib
from rerank_lib import CrossEncoder
from rerank_lib.backends import MissingDependencyError, export_dynamic_quantized_onnx_model, onnx
from rerank_lib.backends._common import hub_export_folder
from rerank_lib.errors import ConfigError


def _copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "model"))


def _forbid_export(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again although an up-to-date export exists")

    monkeypatch.setattr(onnx, "_write_onnx", fail)
    monkeypatch.setattr(onnx, "_write_quantized", fail)


def test_first_load_exports_next_to_the_model_and_matches_torch(model_dir: Path, torch_scores: torch.Tensor) -> None:
    assert not (model_dir / "onnx").exists()
    model = CrossEncoder(model_dir, device="cpu", backend="onnx")
    assert sorted(path.name for path in (model_dir / "onnx").iterdir()) == ["model.onnx"]  # no lock or temp files
    assert model.backend == "onnx"
    scores = model.predict(PAIRS, batch_size=5)  # uneven batches: the graph's batch and length axes are symbolic
    np.testing.assert_allclose(scores, torch_scores.numpy(), atol=1e-4, rtol=0)
    single = model.predict(PAIRS[0])
    assert abs(single - float(torch_scores[0])) < 1e-4


def test_export_keeps_batch_and_length_symbolic_on_unpadded_and_long_batches(model_dir: Path, tmp_path: Path) -> None:
    """The tracer sees one padded example; batches without padding or longer than it must still score as torch."""
    import onnx as onnx_format

    copied = Path(shutil.copytree(model_dir, tmp_path / "exported"))
    model = CrossEncoder(copied, device="cpu", backend="onnx")
    graph = onnx_format.load(str(copied / "onnx" / "model.onnx")).graph
    for graph_input in graph.input:
        dims = graph_input.type.tensor_type.shape.dim
        assert [dim.dim_param for dim in dims] == ["batch", "sequence"], graph_input.name
    reference = CrossEncoder(model_dir, device="cpu")
    long_document = " ".join(DOCUMENTS * 3)  # far longer than the export example
    batches = [[PAIRS[3]] * 4, [(QUERIES[0], long_document), PAIRS[0]], [(QUERIES[1], long_document)]]
    for batch in batches:
        np.testing.assert_allclose(model.predict(batch), reference.predict(batch), atol=1e-4, rtol=0)


def test_second_load_reuses_the_export(onnx_exported_dir: Path, tmp_path: Path, monkeypatch) -> None:
    folder = _copy(onnx_exported_dir, tmp_path)
    exported = folder / "onnx" / "model.onnx"
    old = exported.stat().st_mtime_ns
    os.utime(exported, ns=(old + 10**9, old + 10**9))  # still newer than the weights, but recognisable
    stamped = exported.stat().st_mtime_ns
    _forbid_export(monkeypatch)
    CrossEncoder(folder, device="cpu", backend="onnx")
    assert exported.stat().st_mtime_ns == stamped


def test_an_export_older_than_the_weights_is_redone(onnx_exported_dir: Path, tmp_path: Path, monkeypatch) -> None:
    folder = _copy(onnx_exported_dir, tmp_path)
    exported = folder / "onnx" / "model.onnx"
    backup = shutil.copyfile(exported, tmp_path / "backup.onnx")
    os.utime(exported, (1_000_000, 1_000_000))
    calls: list[Path] = []

    def fake_export(model: CrossEncoder, target: Path) -> None:  # the exporter is tested above; record, rewrite
        calls.append(target)
        shutil.copyfile(backup, target)

    monkeypatch.setattr(onnx, "_write_onnx", fake_export)
    CrossEncoder(folder, device="cpu", backend="onnx")
    assert calls == [exported]
    assert exported.stat().st_mtime >= (folder / "model.safetensors").stat().st_mtime


def test_rank_uses_the_backend(onnx_exported_dir: Path, tmp_path: Path, torch_scores: torch.Tensor) -> None:
    model = CrossEncoder(_copy(onnx_exported_dir, tmp_path), device="cpu", backend="onnx")
    ranking = model.rank(QUERIES[0], DOCUMENTS, top_k=3)
    expected = np.argsort(-torch_scores.numpy()[: len(DOCUMENTS)], kind="stable")[:3]
    assert [item["corpus_id"] for item in ranking] == expected.tolist()


def test_int8_from_scratch_writes_the_fp32_and_the_int8_file(onnx_exported_dir: Path) -> None:
    # The fixture loaded a fresh copy of the saved model with backend="onnx", quantize="int8".
    assert (onnx_exported_dir / "onnx" / "model.onnx").is_file()
    assert (onnx_exported_dir / "onnx" / "model_qint8.onnx").is_file()


def test_int8_is_created_on_first_use_reused_and_keeps_the_ranking(
    onnx_exported_dir: Path, tmp_path: Path, torch_scores: torch.Tensor, monkeypatch
) -> None:
    model_dir = _copy(onnx_exported_dir, tmp_path)
    (model_dir / "onnx" / "model_qint8.onnx").unlink()
    model = CrossEncoder(model_dir, device="cpu", backend="onnx", quantize="int8")
    quantized = model_dir / "onnx" / "model_qint8.onnx"
    assert quantized.is_file() and (model_dir / "onnx" / "model.onnx").is_file()
    assert quantized.stat().st_size < (model_dir / "onnx" / "model.onnx").stat().st_size
    scores = model.predict(PAIRS)
    reference = torch_scores.numpy()
    assert spearmanr(scores, reference).statistic >= 0.99
    assert np.abs(scores - reference).max() < 0.05
    per_query = len(DOCUMENTS)
    for start in range(0, len(PAIRS), per_query):
        fp32, int8 = reference[start : start + per_query], scores[start : start + per_query]
        assert np.argmax(int8) == np.argmax(fp32)
        clear = np.abs(fp32[:, None] - fp32[None, :]) > 0.02  # pairs whose order int8 error cannot flip
        order_int8, order_fp32 = np.sign(int8[:, None] - int8[None, :]), np.sign(fp32[:, None] - fp32[None, :])
        assert np.array_equal(order_int8[clear], order_fp32[clear])

    stamp = quantized.stat().st_mtime_ns
    _forbid_export(monkeypatch)
    again = CrossEncoder(model_dir, device="cpu", backend="onnx", quantize="int8")
    assert quantized.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.predict(PAIRS), scores)


def test_explicit_quantized_export(onnx_exported_dir: Path, tmp_path: Path, monkeypatch) -> None:
    assert rerank_lib.export_dynamic_quantized_onnx_model is export_dynamic_quantized_onnx_model
    folder = _copy(onnx_exported_dir, tmp_path)
    (folder / "onnx" / "model_qint8.onnx").unlink()
    monkeypatch.setattr(onnx, "_write_onnx", lambda *args: pytest.fail("the fp32 export next to it was ignored"))
    path = export_dynamic_quantized_onnx_model(CrossEncoder(folder, device="cpu"), folder)
    assert path == folder / "onnx" / "model_qint8.onnx"
    assert path.is_file()


def test_a_new_random_multi_output_head_is_exported_to_a_temporary_folder(tiny_bert_dir: Path, caplog) -> None:
    before = sorted(path.name for path in tiny_bert_dir.iterdir())
    torch.manual_seed(0)
    model = CrossEncoder(tiny_bert_dir, num_labels=3, device="cpu", backend="onnx")
    assert sorted(path.name for path in tiny_bert_dir.iterdir()) == before  # nothing written next to the base model
    assert "not reused" in caplog.text
    with torch.inference_mode():
        expected = model(**model.tokenize(PAIRS)).numpy()  # three outputs: Identity activation
    scores = model.predict(PAIRS)
    assert scores.shape == (len(PAIRS), 3)
    np.testing.assert_allclose(scores, expected, atol=1e-4, rtol=0)


def test_session_threads(onnx_exported_dir: Path, tmp_path: Path) -> None:
    model = CrossEncoder(_copy(onnx_exported_dir, tmp_path), device="cpu", backend="onnx", num_threads=1)
    assert model._backend_runner.session.get_session_options().intra_op_num_threads == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "tensorrt"}, "backend='tensorrt' is not one of"),
        ({"backend": "onnx", "quantize": "int4"}, "quantize='int4' is not one of"),
        ({"backend": "torch", "quantize": "int8"}, "needs backend='onnx'"),
        ({"backend": "openvino", "quantize": "int8"}, "needs backend='onnx'"),
        ({"backend": "onnx", "precision": "bf16"}, "not 'onnx'"),
        ({"precision": "fp8"}, "precision='fp8' is not one of"),
        ({"num_threads": 0}, "num_threads must be a positive integer"),
    ],
)
def test_bad_options_fail_before_loading(kwargs: dict, message: str, tmp_path: Path) -> None:
    # The folder does not exist: the option check must come first, with its own message.
    with pytest.raises(ConfigError, match=message):
        CrossEncoder(tmp_path / "missing", **kwargs)


@pytest.mark.parametrize(("backend", "package"), [("onnx", "onnxruntime"), ("openvino", "openvino")])
def test_missing_optional_dependency_names_the_extra(backend: str, package: str, monkeypatch, model_dir: Path) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a))
    expected = rf"needs the package\(s\) {package}.*rerank-pipeline\[{backend}\]"
    with pytest.raises(MissingDependencyError, match=expected):
        CrossEncoder(model_dir, device="cpu", backend=backend)
    assert not (model_dir / "onnx").exists()


def test_hub_models_export_beside_the_hub_cache(tmp_path: Path) -> None:
    assert hub_export_folder("org/reranker", str(tmp_path)) == tmp_path / "rerank_lib-exports" / "org--reranker"
