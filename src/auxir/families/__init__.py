"""Model families, one per module; importing this package registers them all (see ``families.base``)."""

from __future__ import annotations

from auxir.families import cross_encoder  # noqa: F401  (imports register the families)
from auxir.families.base import FAMILIES, Context, Family, QuerySplit, Ranking, get_family, register_family

__all__ = ["FAMILIES", "Context", "Family", "QuerySplit", "Ranking", "get_family", "register_family"]
