"""Every data test writes its doc indexes into a temporary cache, never into ~/.cache/auxir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def auxir_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("auxir-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUXIR_CACHE", str(path))
        yield path
