"""Score heads over encoder outputs. One scorer per module; ``SCORERS`` is the registry the CLI lists."""

from __future__ import annotations

from auxir.models.scorers.base import SCORERS, Scorer, build_scorer, register_scorer
from auxir.models.scorers.cls import ClsScorer

__all__ = ["SCORERS", "ClsScorer", "Scorer", "build_scorer", "register_scorer"]
