"""Precomputed embeddings with their ids, saved as safetensors or as a memory-mapped ``.npy`` file.

CODER (Zerveas et al., EMNLP 2022, Section 3) trains a query encoder against **frozen, precomputed**
document embeddings; this is where they live. A store is a directory::

    auxir_index.json        # kind "embeddings"; format, count, dim, dtype; metadata (e.g. the encoder)
    ids.json                # row i of the matrix is the embedding of ids[i]
    embeddings.safetensors  # or embeddings.npy (opened with mmap_mode="r": no copy in memory)

safetensors is the project's format for tensors; ``.npy`` is for stores larger than memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from safetensors.numpy import load_file, save_file

from auxir.io import atomic_path, atomic_write
from auxir.retrieval.index_files import atomic_directory, read_ids, read_manifest, write_ids, write_manifest

StoreFormat = Literal["safetensors", "npy"]
StoreDtype = Literal["float32", "float16"]
_IDS_FILE = "ids.json"
_TENSOR_NAME = "embeddings"


@dataclass
class EmbeddingStore:
    """``embeddings[i]`` is the vector of ``ids[i]``; ``embeddings`` may be a read-only memory map."""

    ids: list[str]
    embeddings: np.ndarray  # (count, dim) float32 or float16
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.embeddings.ndim != 2:
            raise ValueError(
                f"EmbeddingStore.embeddings: expected a 2-d array (count, dim), found shape {self.embeddings.shape}"
            )
        if len(self.ids) != self.embeddings.shape[0]:
            raise ValueError(
                f"EmbeddingStore: expected one id per row, found {len(self.ids)} ids "
                f"for {self.embeddings.shape[0]} rows"
            )
        self._row_of: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def get(self, ids: list[str]) -> np.ndarray:
        """The rows of ``ids``, in that order: a ``(len(ids), dim)`` array (a copy)."""
        if self._row_of is None:
            self._row_of = {doc_id: row for row, doc_id in enumerate(self.ids)}
        try:
            rows = [self._row_of[i] for i in ids]
        except KeyError as error:
            raise KeyError(f"EmbeddingStore: no embedding for id {error.args[0]!r}") from None
        return np.asarray(self.embeddings[rows], dtype=np.float32)

    def save(
        self, directory: str | Path, format: StoreFormat = "safetensors", dtype: StoreDtype = "float32"
    ) -> None:
        """Write the store into ``directory`` (atomically); ``float16`` halves it (``get`` still returns float32)."""
        if format not in ("safetensors", "npy"):
            raise ValueError(f"EmbeddingStore.save: expected format 'safetensors' or 'npy', found {format!r}")
        if dtype not in ("float32", "float16"):
            raise ValueError(f"EmbeddingStore.save: expected dtype 'float32' or 'float16', found {dtype!r}")
        matrix = np.ascontiguousarray(self.embeddings, dtype=dtype)
        with atomic_directory(directory) as tmp:
            if format == "safetensors":
                with atomic_path(tmp / "embeddings.safetensors") as file:
                    save_file({_TENSOR_NAME: matrix}, str(file))
            else:
                with atomic_write(tmp / "embeddings.npy", mode="wb") as handle:
                    np.save(handle, matrix)
            write_ids(tmp / _IDS_FILE, self.ids)
            meta = {"format": format, "count": len(self), "dim": self.dim, "dtype": dtype}
            write_manifest(tmp, "embeddings", meta, metadata=self.metadata)

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = True) -> EmbeddingStore:
        """Open a store; an ``.npy`` store is memory-mapped read-only unless ``mmap`` is off."""
        directory = Path(directory)
        manifest = read_manifest(directory, kind="embeddings")
        meta = manifest["config"]
        if meta.get("format") == "safetensors":
            tensors = load_file(str(directory / "embeddings.safetensors"))
            if _TENSOR_NAME not in tensors:
                raise ValueError(
                    f"{directory / 'embeddings.safetensors'}: expected a tensor named {_TENSOR_NAME!r}, "
                    f"found {sorted(tensors)}"
                )
            embeddings = tensors[_TENSOR_NAME]
        elif meta.get("format") == "npy":
            embeddings = np.load(directory / "embeddings.npy", mmap_mode="r" if mmap else None)
        else:
            raise ValueError(
                f"{directory}: expected format 'safetensors' or 'npy', found {meta.get('format')!r}"
            )
        ids = read_ids(directory / _IDS_FILE, expected_count=embeddings.shape[0])
        return cls(ids, embeddings, metadata=manifest.get("metadata", {}))
