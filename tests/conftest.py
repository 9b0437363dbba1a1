"""Shared fixtures. ``shared_data``: the real collections in ../shared/data, never copied into the repo."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# The tiny random BERT of the training tests, for every test folder (one definition, in tests/training).
from tests.training.conftest import tiny_bert  # noqa: F401  (a fixture)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA} does not exist")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def auxir_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Doc-store indexes written by any test go to a temporary cache, never into ~/.cache/auxir."""
    path = tmp_path_factory.mktemp("auxir-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUXIR_CACHE", str(path))
        yield path
