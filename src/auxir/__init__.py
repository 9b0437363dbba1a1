"""auxir: training neural rankers and retrievers with auxiliary objectives."""

from __future__ import annotations

__version__ = "0.1.0"
