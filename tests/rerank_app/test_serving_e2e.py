"""The champion served over real HTTP, on the quick profile's registered model.

One module fixture runs a short quick flow (version 1) and the same flow again with another seed (version 2: another
scoring head, trained again), so the two versions score differently. Each test starts
`rerank serve-model` as a user would, from `.venv/bin/rerank` without the virtualenv on PATH, on a free loopback
port, and compares the answers with `rerank predict` on each version's model folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient

from rerank_app.cli import main
from tests.e2e_support import PROJECT, link_raw_data, quick_params
from tests.server_support import clean_env, free_port, group_gone, start, stop, tail, wait_healthy

pytestmark = pytest.mark.slow

FLOW_SECONDS = 1500
QUERY = "how are glacier caves formed?"
PASSAGES = [
    "A partly submerged glacier cave on Perito Moreno Glacier.",
    "The ice facade is approximately 60 m high.",
    "A glacier cave is a cave formed within the ice of a glacier.",
    "Glacier caves are often called ice caves, but this term is properly used to describe bedrock caves.",
    "The capital of France is Paris.",
]
PAIRS = [(QUERY, passage) for passage in PASSAGES] + [("what is a cat?", "Cats are small carnivorous mammals.")]


@dataclass(frozen=True)
class Registry:
    root: Path
    uri: str
    model: str
    scores: dict[str, list[float]]  # `rerank predict` on each registered version's model folder


def run_cli(args: list[str], log: Path, timeout: float = FLOW_SECONDS) -> None:
    command = [sys.executable, "-m", "rerank_app.cli", *args]
    with log.open("wb") as handle:
        result = subprocess.run(
            command, cwd=PROJECT, env=clean_env(), stdout=handle, stderr=subprocess.STDOUT, timeout=timeout
        )
    assert result.returncode == 0, f"rerank {' '.join(args)} failed:\n{tail(log, 8000)}"


def predict_version(client: MlflowClient, uri: str, model: str, version: str, work: Path) -> list[float]:
    """`rerank predict` on the reranker folder inside the registered version's pyfunc."""
    source = client.get_model_version_download_uri(model, version)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, tracking_uri=uri, dst_path=str(work)))
    pairs = work / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"query": q, "passage": p}) + "\n" for q, p in PAIRS))
    out = work / "scores.jsonl"
    assert (
        main(["predict", "--model", str(local / "artifacts" / "model"), "--input", str(pairs), "--output", str(out)])
        == 0
    )
    return [json.loads(line)["score"] for line in out.read_text().splitlines()]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    work = tmp_path_factory.mktemp("serving")
    root = work / "project"
    root.mkdir()
    quick_params(root)
    link_raw_data(root)
    short = ["--set", "train.max_steps=2", "--set", "evaluate.max_queries=8"]  # serving is under test, not the model
    run_cli(["--root", str(root), *short, "run"], work / "flow-1.log")
    run_cli(["--root", str(root), *short, "--set", "train.seed=43", "run"], work / "flow-2.log")
    record = json.loads((root / "artifacts" / "registry.json").read_text())
    uri, model = record["tracking_uri"], record["model_name"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = sorted(str(v.version) for v in client.search_model_versions(f"name='{model}'"))
    assert versions == ["1", "2"]
    scores = {}
    for version in versions:
        (work / f"v{version}").mkdir()
        scores[version] = predict_version(client, uri, model, version, work / f"v{version}")
    assert max(abs(a - b) for a, b in zip(scores["1"], scores["2"], strict=True)) > 1e-3  # versions tell apart
    return Registry(root, uri, model, scores)


def champion(registry: Registry) -> str:
    client = MlflowClient(tracking_uri=registry.uri, registry_uri=registry.uri)
    return str(client.get_model_version_by_alias(registry.model, "champion").version)


def env_without_venv() -> dict[str, str]:
    """A user's shell that did not activate the virtualenv: its bin folder is not on PATH."""
    venv_bin = str(Path(sys.executable).parent)
    env = clean_env()
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    return env


@contextmanager
def serve_model(registry: Registry, tmp_path: Path, *args: str) -> Iterator[str]:
    """`.venv/bin/rerank serve-model ...` on a free loopback port until the block ends; yields its base URL."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "rerank"), "--root", str(registry.root), "serve-model"]
    command += ["--port", str(port), *args]
    url = f"http://127.0.0.1:{port}"
    server = start(
        "rerank serve-model", command, env_without_venv(), f"{url}/health", tmp_path / f"{port}.log", tmp_path
    )
    try:
        wait_healthy([server])
        yield url
    finally:
        stop(server)
    assert group_gone(server.process.pid), "the model server left processes behind"


def assert_client_error(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert words in response.text
    assert "Traceback" not in response.text and "stack_trace" not in response.text


def test_mlflow_scoring_server_serves_the_champion_then_the_promoted_version(
    registry: Registry, tmp_path: Path
) -> None:
    first = champion(registry)
    split = {"dataframe_split": {"columns": ["query", "passage"], "data": [list(p) for p in PAIRS]}}
    records = {"dataframe_records": [{"query": q, "passage": p} for q, p in PAIRS]}
    with serve_model(registry, tmp_path) as url:
        for body in (split, records):
            response = httpx.post(f"{url}/invocations", json=body, timeout=60)
            assert response.status_code == 200, response.text
            assert response.json()["predictions"] == pytest.approx(registry.scores[first], abs=1e-5)
        with ThreadPoolExecutor(max_workers=6) as pool:  # the server predicts each request in its own thread
            singles = list(pool.map(lambda pair: invoke_one(url, pair), PAIRS * 4))
        assert [r.json()["predictions"][0] for r in singles] == pytest.approx(registry.scores[first] * 4, abs=1e-5)

        invocations = f"{url}/invocations"
        assert_client_error(httpx.post(invocations, json={"dataframe_records": [{"query": "q"}]}), 400, "passage")
        null_passage = {"dataframe_records": [{"query": "q", "passage": "p"}, {"query": "q", "passage": None}]}
        assert_client_error(httpx.post(invocations, json=null_passage), 400, "'passage' is empty (null) in row(s) [1]")
        assert_client_error(httpx.post(invocations, json={"rows": [["q", "p"]]}), 400, "dataframe_split")
        not_json = httpx.post(invocations, content=b"{nope", headers={"content-type": "application/json"})
        assert_client_error(not_json, 400, "valid JSON")

    other = "2" if first == "1" else "1"
    run_cli(["--root", str(registry.root), "promote", "--version", other], tmp_path / "promote.log", timeout=300)
    assert champion(registry) == other
    with serve_model(registry, tmp_path) as url:  # restarted: the new champion
        response = httpx.post(f"{url}/invocations", json=records, timeout=60)
        assert response.json()["predictions"] == pytest.approx(registry.scores[other], abs=1e-5)


def invoke_one(url: str, pair: tuple[str, str]) -> httpx.Response:
    query, passage = pair
    return httpx.post(
        f"{url}/invocations", json={"dataframe_records": [{"query": query, "passage": passage}]}, timeout=60
    )


def rerank_one(url: str, passage: str) -> httpx.Response:
    return httpx.post(f"{url}/rerank", json={"query": QUERY, "documents": [passage]}, timeout=60)


def test_rerank_api_serves_the_champion_as_rerank_predict_scores_it(registry: Registry, tmp_path: Path) -> None:
    version = champion(registry)
    expected = registry.scores[version][: len(PASSAGES)]
    with serve_model(registry, tmp_path, "--api", "rerank", "--workers", "2", "--max-batch-pairs", "2") as url:
        with ThreadPoolExecutor(max_workers=6) as pool:  # batches of two pairs, two scored at once by one model
            singles = list(pool.map(lambda passage: rerank_one(url, passage), PASSAGES))
        assert [r.json()[0]["relevance_score"] for r in singles] == pytest.approx(expected, abs=1e-5)
        response = httpx.post(f"{url}/rerank", json={"query": QUERY, "documents": PASSAGES, "top_n": 3}, timeout=60)
        assert response.status_code == 200, response.text
        assert response.headers["X-Model-Name"] == registry.model
        assert response.headers["X-Model-Version"] == version
        results = response.json()
        best = sorted(range(len(PASSAGES)), key=lambda i: -expected[i])[:3]
        assert [r["index"] for r in results] == best
        assert [r["relevance_score"] for r in results] == pytest.approx([expected[i] for i in best], abs=1e-5)

        health = httpx.get(f"{url}/health")
        assert health.json()["version"] == version and health.headers["X-Model-Version"] == version
        assert health.json()["workers"] == 2
        assert_client_error(httpx.post(f"{url}/rerank", json={"query": QUERY}), 422, "documents")
