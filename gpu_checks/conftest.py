"""GPU checks live outside tests/ (CI has no GPU and runs no skipped tests); they reuse the test fixtures.

Run on a machine with CUDA: ``python -m pytest gpu_checks -s``.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "rerank_lib" / "losses"))
sys.path.insert(0, str(ROOT))

from tests.conftest import tiny_bert_copy, tiny_bert_dir, tiny_model, tiny_multilabel_model  # noqa: E402, F401
