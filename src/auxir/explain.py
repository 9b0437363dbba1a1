"""What a multi-aspect model makes of a query and a document (MADRM, Kong et al., KDD 2022, §9.4, Table 8).

For each side: every labelled aspect's top predicted values with their probabilities (``softmax(E_a U_a^T +
b_a)``, §5), the presence probability of each slot (``fusion: presence``, eq. 5) and the fusion weight of
each slot, OTHER included (rows sum to one); and the pair's score, ``scale · sim(q, d)`` as ``auxir rerank``
scores it (``similarity`` alone is what the FAISS index returns). A model without labels (MADR) has latent
slots ``aspect_1 ...``: weights (and presence) only; BiBERT (``aspects: 0``) one slot ``text``.

>>> model = load_aspect_encoder("outputs/madral/best")  # doctest: +SKIP
>>> explanation = explain(model, "breville juicer", "Juicing with the Breville Juice Fountain", top_k=3)  # doctest: +SKIP
>>> print(explanation.to_text())  # doctest: +SKIP
>>> plot_explanation(explanation, "explain.png")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from auxir.models.aspect_encoder import AspectEncoder

_SHOWN_CHARS = 100  # of a text, in the table and the plot's titles


@dataclass
class AspectValue:
    value: str
    probability: float


@dataclass
class SideExplanation:
    """One text as the model read it; slots as ``Explanation.slots``."""

    text: str
    tokens: int  # text tokens read (after truncation at the side's length)
    weights: dict[str, float]  # slot → fusion weight; they sum to one
    presence: dict[str, float] | None  # slot → presence probability (``fusion: presence`` only)
    predictions: dict[str, list[AspectValue]]  # labelled aspect → its top values, most probable first
    gold: dict[str, list[str]] | None = None  # labelled aspect → the text's own labels, when known


@dataclass
class Explanation:
    model: str
    slots: list[str]  # the labelled (or latent) aspects, then OTHER
    query: SideExplanation
    document: SideExplanation
    similarity: float  # of the two vectors: the FAISS index's score
    similarity_kind: str  # "cosine" or "dot"
    scale: float
    score: float  # scale · similarity: the score auxir rerank and the ranking objectives use

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        """Table 8 of the paper: per side, a column per slot; rows gold, top 1..K, presence, weight."""
        lines = [f"model: {self.model}"] if self.model else []
        lines.append(
            f"score: {self.score:.4f} = {self.scale:g} × {self.similarity_kind} {self.similarity:.4f}"
        )
        for name, side in (("query", self.query), ("document", self.document)):
            lines += ["", f"{name} ({side.tokens} tokens): {_shorten(side.text)}", *_table(self.slots, side)]
        return "\n".join(lines)


def load_aspect_encoder(path: str | Path) -> AspectEncoder:
    """A model folder saved by the ``madrm`` family (its ``auxir.json`` says ``auxir-aspect-encoder``)."""
    from auxir.models.aspect_encoder import FORMAT, AspectEncoder

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"{path}: no such model folder (expected a folder saved by the madrm family, e.g. outputs/madral/best)"
        )
    marker = path / "auxir.json"
    if not marker.is_file():
        raise ValueError(
            f"{path}: expected a model saved by the madrm family (auxir.json with format "
            f"{FORMAT['format']!r}), found no auxir.json"
        )
    try:
        kind = json.loads(marker.read_text(encoding="utf-8")).get("format")
    except (json.JSONDecodeError, AttributeError):
        raise ValueError(
            f"{marker}: expected a JSON object with a 'format', found {marker.read_text()[:80]!r}"
        ) from None
    if kind != FORMAT["format"]:
        raise ValueError(
            f"{marker}: expected a multi-aspect model (format {FORMAT['format']!r}, family madrm), "
            f"found format {kind!r}; auxir explain reads aspect predictions and fusion weights, which only it has"
        )
    return AspectEncoder.from_pretrained(path)


def explain(
    model: AspectEncoder,
    query: str,
    document: str,
    top_k: int = 3,
    query_metadata: Mapping[str, Any] | None = None,
    doc_metadata: Mapping[str, Any] | None = None,
    model_name: str = "",
) -> Explanation:
    """The explanation of ``model``'s score for ``query`` and ``document``. With a text's ``metadata`` (as in
    the dataset) and a model with labels, the text's own labels are given beside the predictions."""
    if top_k < 1:
        raise ValueError(f"explain: top_k must be >= 1, found {top_k}")
    labeler = None
    if model.vocabulary is not None and model.config.labels.enabled:
        from auxir.data.aspects import AspectLabeler

        labeler = AspectLabeler(model.config.labels)
    sides = {}
    for side, text, metadata in (("query", query, query_metadata), ("document", document, doc_metadata)):
        ids = model.tokenize([text], side)
        predicted = model.predict_tokens(ids, side, batch_size=1)
        sides[side] = (predicted.vectors[0], _side(model, text, len(ids[0]), predicted, top_k))
        if labeler is not None and metadata is not None:
            labels = labeler.labels(metadata, side)
            sides[side][1].gold = {name: list(labels.get(name, ())) for name in model.vocabulary.names}
    similarity = float(np.dot(sides["query"][0].astype(np.float64), sides["document"][0].astype(np.float64)))
    return Explanation(
        model=model_name,
        slots=list(model.slot_names),
        query=sides["query"][1],
        document=sides["document"][1],
        similarity=similarity,
        similarity_kind=model.config.similarity,
        scale=float(model.scale),
        score=float(model.scale) * similarity,
    )


def _side(model: AspectEncoder, text: str, tokens: int, predicted, top_k: int) -> SideExplanation:
    slots = model.slot_names
    predictions = {}
    for name, probabilities in predicted.probabilities.items():
        row = probabilities[0]
        top = np.argsort(-row, kind="stable")[:top_k]
        values = model.vocabulary.values[name]
        predictions[name] = [AspectValue(values[i], round(float(row[i]), 6)) for i in top]
    presence = None
    if predicted.presence is not None:
        presence = {s: round(float(p), 6) for s, p in zip(slots, predicted.presence[0])}
    weights = {s: round(float(w), 6) for s, w in zip(slots, predicted.weights[0])}
    return SideExplanation(text, tokens, weights, presence, predictions)


def _table(slots: list[str], side: SideExplanation) -> list[str]:
    rows: list[list[str]] = [["", *slots]]
    if side.gold is not None:
        rows.append(
            ["gold", *(", ".join(side.gold.get(s, [])) or "-" if s in side.gold else "" for s in slots)]
        )
    depth = max((len(v) for v in side.predictions.values()), default=0)
    for k in range(depth):
        cells = []
        for s in slots:
            top = side.predictions.get(s, [])
            cells.append(f"{top[k].value} {top[k].probability:.3f}" if k < len(top) else "")
        rows.append([f"top {k + 1}", *cells])
    if side.presence is not None:
        rows.append(["presence", *(f"{side.presence[s]:.3f}" for s in slots)])
    rows.append(["weight", *(f"{side.weights[s]:.3f}" for s in slots)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def _shorten(text: str, limit: int = _SHOWN_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plot_explanation(explanation: Explanation, out_png: str | Path) -> Path:
    """Bars of the fusion weight of each slot, query and document side by side (presence probabilities as
    dots, each labelled aspect's top value above its bar); written atomically as PNG. Returns ``out_png``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from auxir.io import atomic_write

    slots = explanation.slots
    figure = Figure(figsize=(max(7.0, 2.0 + 1.6 * len(slots)), 4.2), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    positions = np.arange(len(slots))
    for ax, (name, side), color in zip(
        axes, (("query", explanation.query), ("document", explanation.document)), ("tab:blue", "tab:orange")
    ):
        weights = [side.weights[s] for s in slots]
        ax.bar(positions, weights, width=0.7, color=color)
        if side.presence is not None:
            ax.plot(positions, [side.presence[s] for s in slots], "o", color="black", markersize=5)
        for x, slot, weight in zip(positions, slots, weights):
            top = side.predictions.get(slot)
            if top:
                ax.annotate(
                    f"{_shorten(top[0].value, 18)}\n{top[0].probability:.2f}",
                    (x, weight),
                    xytext=(0, 3),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize="x-small",
                )
        ax.set_xticks(positions, slots, rotation=30 if len(slots) > 4 else 0, fontsize="small")
        ax.set_ylim(0, 1.15)
        ax.set_title(f"{name}: {_shorten(side.text, 48)}", fontsize="small")
        ax.grid(axis="y", alpha=0.3)
    handles = [
        Patch(color="tab:blue", label="query weight"),
        Patch(color="tab:orange", label="document weight"),
    ]
    if explanation.query.presence is not None:
        handles.append(Line2D([], [], marker="o", color="black", linestyle="", label="presence"))
    axes[0].set_ylabel("fusion weight (bars), presence (dots)" if handles[2:] else "fusion weight")
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small")
    figure.suptitle(
        f"score {explanation.score:.3f} = {explanation.scale:g} × {explanation.similarity_kind} "
        f"{explanation.similarity:.3f}",
        fontweight="bold",
    )
    out_png = Path(out_png)
    FigureCanvasAgg(figure)
    with atomic_write(out_png, "wb") as handle:
        figure.savefig(handle, format="png", dpi=120)
    return out_png
