"""Score heads over encoder outputs. One scorer per module; ``SCORERS`` is the registry the CLI lists."""

from __future__ import annotations

from auxir.models.scorers.base import SCORERS, PassageScorer, Scorer, build_scorer, register_scorer
from auxir.models.scorers.cedr_knrm import CedrKnrmScorer
from auxir.models.scorers.cls import ClsScorer
from auxir.models.scorers.pacrr import PacrrScorer
from auxir.models.scorers.parade import ParadeScorer
from auxir.models.scorers.passages import Passages, PassageSplit

__all__ = [
    "SCORERS",
    "CedrKnrmScorer",
    "ClsScorer",
    "PacrrScorer",
    "ParadeScorer",
    "PassageScorer",
    "PassageSplit",
    "Passages",
    "Scorer",
    "build_scorer",
    "register_scorer",
]
