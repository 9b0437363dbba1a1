"""Per-component gradients on the shared layer: their norms, the cosines between them, and the weights
that hold each auxiliary gradient at a set ratio of the ranking gradient.

A new token head starts at cross-entropy ≈ ln|V|, and its gradient on the shared encoder can be 10–30×
the ranking loss's (measured in docs/results/sjtf.md): a fixed α then lets the auxiliary task steer the
encoder. Measuring both gradients where they meet, on the last encoder layer, shows it (the training
log's ``grad_norm/*`` and ``grad_cos/*``) and lets ``GradRatioWeighting`` correct it.
"""

from __future__ import annotations

import itertools

import torch
import torch.distributed as dist
from torch import nn


def component_gradients(
    components: dict[str, torch.Tensor], params: list[nn.Parameter]
) -> dict[str, torch.Tensor]:
    """The gradient of each loss w.r.t. ``params``, flattened, in fp32; averaged over DDP processes so
    every process sees (and weights by) the same numbers. The graph is kept for the real backward."""
    out = {}
    for name, loss in components.items():
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        flat = torch.cat(
            [(g if g is not None else torch.zeros_like(p)).flatten().float() for g, p in zip(grads, params)]
        )  # (P,)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(flat)
            flat /= dist.get_world_size()
        out[name] = flat
    return out


def gradient_stats(grads: dict[str, torch.Tensor]) -> dict[str, float]:
    """``grad_norm/<name>`` for each component and ``grad_cos/<a>|<b>`` for each pair."""
    stats = {f"grad_norm/{name}": float(g.norm()) for name, g in grads.items()}
    for (a, ga), (b, gb) in itertools.combinations(grads.items(), 2):
        stats[f"grad_cos/{a}|{b}"] = float(torch.nn.functional.cosine_similarity(ga, gb, dim=0))
    return stats
