"""Pre-tokenised texts: each query and document is tokenised once, without special tokens.

Model inputs are assembled from these pieces on the device (``PairTemplate.pack``), so a training step
does no tokenisation and the same cache serves every view of a batch (ranking pairs, masked queries,
separately encoded texts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np


class TokenCache:
    def __init__(self, tokenizer, max_length: int, batch_size: int = 1024):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self._ids: dict[str, np.ndarray] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._ids

    def __getitem__(self, key: str) -> np.ndarray:
        return self._ids[key]

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, keys: Iterable[str], text_of: Callable[[str], str]) -> None:
        """Tokenise the texts of the keys not cached yet, in batches (the fast tokenizer runs in Rust)."""
        todo = [k for k in dict.fromkeys(keys) if k not in self._ids]
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            encoded = self.tokenizer(
                [text_of(k) for k in chunk],
                add_special_tokens=False,
                truncation=True,
                max_length=self.max_length,
                return_attention_mask=False,
                return_token_type_ids=False,
            )["input_ids"]
            for key, ids in zip(chunk, encoded):
                self._ids[key] = np.asarray(ids, dtype=np.int32)


def pad_stack(arrays: list[np.ndarray], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad 1-d arrays to the longest: (n, L) ids and (n,) lengths."""
    lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    out = np.full((len(arrays), max(int(lengths.max(initial=0)), 1)), pad_id, dtype=np.int64)
    for row, a in enumerate(arrays):
        out[row, : len(a)] = a
    return out, lengths
