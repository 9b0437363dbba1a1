"""Model families, one per module; importing this package registers them all (see ``families.base``)."""

from __future__ import annotations

from auxir.families import (  # noqa: F401  (imports register the families)
    bi_encoder,
    coder,
    cross_encoder,
    madrm,
    seq2seq,
)
from auxir.families.base import FAMILIES, Context, Family, QuerySplit, Ranking, get_family, register_family

__all__ = ["FAMILIES", "Context", "Family", "QuerySplit", "Ranking", "get_family", "register_family"]
