"""docs/library.md: every Python block runs as written, in order, with the Hub ids swapped for the tiny models."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "library.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def test_every_example_of_the_library_guide_runs(
    tiny_bert_dir: Path, tiny_causal_lm_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the examples write models/ and checkpoints/ where they run
    swaps = {
        '"sentence-transformers/all-MiniLM-L6-v2"': repr(str(tiny_bert_dir)),
        '"Qwen/Qwen3-Reranker-0.6B"': repr(str(tiny_causal_lm_dir)),
    }
    blocks = BLOCK.findall(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 10
    namespace: dict = {"__name__": "__main__"}
    for number, block in enumerate(blocks, start=1):
        for hub_id, local in swaps.items():
            block = block.replace(hub_id, local)
        exec(compile(block, f"docs/library.md block {number}", "exec"), namespace)  # noqa: S102
    assert namespace["reloaded"].has_adapter
    assert np.isfinite(namespace["scores"]).all() and len(namespace["same"]) == 200
    np.testing.assert_allclose(namespace["same"], namespace["scores"], atol=1e-6)
    assert [item["corpus_id"] for item in namespace["top"]] == list(np.argsort(-namespace["scores"], kind="stable")[:5])
    assert namespace["mined"].column_names == ["query", "positive", "negative"]
    assert (tmp_path / "models" / "minilm-lora-merged" / "adapter" / "adapter_config.json").is_file()
