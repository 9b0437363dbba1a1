"""Split long documents into overlapping passages, as PARADE does (Li et al., 2020, §3.1).

Passage ``k`` of a document holds its tokens ``[k·stride, k·stride + length)``; a document has
``1 + ceil(max(0, tokens − length) / stride)`` passages, at most ``max_passages`` (the tokens after them
are never read), and at least one (an empty document has one empty passage). Every passage of every
document of a batch becomes one row, so the encoder sees them all in a single pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PassageSplit:
    length: int  # document tokens a passage holds
    stride: int  # tokens between the starts of two passages (stride < length: they overlap)
    max_passages: int

    def __post_init__(self) -> None:
        if self.length < 1 or not 1 <= self.stride <= self.length or self.max_passages < 1:
            raise ValueError(
                "passages need passage_length ≥ 1, 1 ≤ stride ≤ passage_length and max_passages ≥ 1; found "
                f"passage_length={self.length}, stride={self.stride}, max_passages={self.max_passages}"
            )

    @property
    def max_doc_tokens(self) -> int:
        """Document tokens the passages can cover; later ones are never read."""
        return self.length + (self.max_passages - 1) * self.stride

    def count(self, doc_len: torch.Tensor) -> torch.Tensor:  # (d,) -> (d,)
        beyond_first = (doc_len - self.length).clamp(min=0)
        return (1 + (beyond_first + self.stride - 1) // self.stride).clamp(max=self.max_passages)

    def first(self, doc: torch.Tensor, doc_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each document's first passage: (d, ≤ length) ids and (d,) lengths."""
        return doc[:, : self.length], doc_len.clamp(max=self.length)

    def split(self, doc: torch.Tensor, doc_len: torch.Tensor) -> Passages:
        """All passages of ``doc`` (d, Ld) right-padded ids with (d,) lengths, one row each."""
        count = self.count(doc_len)  # (d,)
        slots = int(count.max()) if len(count) else 1
        mask = torch.arange(slots, device=doc.device) < count.unsqueeze(1)  # (d, P)
        doc_index, slot = mask.nonzero(as_tuple=True)  # (R,) each, document by document
        start = slot * self.stride  # (R,)
        lengths = (doc_len[doc_index] - start).clamp(0, self.length)  # (R,)
        width = max(int(lengths.max()) if len(lengths) else 0, 1)
        positions = start.unsqueeze(1) + torch.arange(width, device=doc.device)  # (R, Lp)
        # Positions past a passage's end are never read (its length says where it ends); keep them inside.
        tokens = doc[doc_index.unsqueeze(1), positions.clamp(max=doc.shape[1] - 1)]  # (R, Lp)
        return Passages(tokens, lengths, doc_index, slot, mask)


@dataclass
class Passages:
    tokens: torch.Tensor  # (R, Lp) token ids of each passage, right-padded
    lengths: torch.Tensor  # (R,)
    doc_index: torch.Tensor  # (R,) the document each passage comes from
    slot: torch.Tensor  # (R,) its position among that document's passages
    mask: torch.Tensor  # (d, P) true where a document has a passage

    def grid(self, rows: torch.Tensor) -> torch.Tensor:  # (R, H) -> (d, P, H), zeros where mask is false
        out = rows.new_zeros(*self.mask.shape, rows.shape[-1])
        out[self.doc_index, self.slot] = rows
        return out
