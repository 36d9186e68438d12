"""Paths to the real team data (data tests) shared by the data tests."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
RAW = ROOT / "data" / "raw"


@pytest.fixture(scope="session")
def raw() -> Path:
    return RAW
