"""Attention masks beyond padding: GDMTL's mixed attention (Liu et al., WWW 2021, §4.2, eq. 7, Fig. 2b).

A packed pair ``[CLS] A [SEP] B [SEP]`` is read as a source (A, with the frame tokens before B) and a target
(B, with the frame tokens after it). Under mixed attention the source attends bidirectionally to itself and
never to the target; each target position attends to the whole source and causally to the target up to and
including itself. A target token's state therefore depends on the source and the target tokens before it
only, as in a decoder, and the state at position t can predict the token at t + 1. Padding is never attended.

Hugging Face encoders take such a mask as a 4-D tensor ``(n, 1, W, W)`` (query position × key position),
which they pass through unchanged to the attention function: ``sdpa`` reads a boolean mask (True = attend)
and ``eager`` adds the mask to the attention scores, so it needs 0 / a very negative float. A boolean mask
given to ``eager`` is added as 1 / 0 and masks nothing; ``for_attention`` gives each the form it reads.
"""

from __future__ import annotations

import torch

# Attention implementations of transformers that take an arbitrary 4-D mask (flash-attention kernels take
# padding only; flex attention wants a BlockMask).
MASKABLE_ATTENTION = ("eager", "sdpa")


def mixed_attention_mask(attention_mask: torch.Tensor, target_start: torch.Tensor) -> torch.Tensor:
    """Boolean ``(n, 1, W, W)`` mask, True where query position i may attend to key position j.

    ``attention_mask`` (n, W) marks the real tokens (1) and padding (0); ``target_start`` (n, 1) is the
    position of each row's first target token. Key j is allowed to query i when j is a real token and either
    j is in the source (``j < target_start``) or j ≤ i: source rows then see the source only, target rows the
    source and the target up to themselves. Padding rows see every real token (as under a padding-only mask),
    so no row is fully masked and no softmax divides by zero.
    """
    width = attention_mask.shape[1]
    pos = torch.arange(width, device=attention_mask.device)  # (W,)
    key_real = attention_mask.bool().unsqueeze(1)  # (n, 1, W)
    key_in_source = pos.view(1, 1, width) < target_start.view(-1, 1, 1)  # (n, 1, W)
    key_not_after_query = pos.view(1, width, 1) >= pos.view(1, 1, width)  # (1, W, W)
    return (key_real & (key_in_source | key_not_after_query)).unsqueeze(1)  # (n, 1, W, W)


def for_attention(mask: torch.Tensor, implementation: str, dtype: torch.dtype) -> torch.Tensor:
    """A boolean 4-D mask in the form the attention ``implementation`` reads: boolean for ``sdpa``, additive
    (0 where attended, the lowest ``dtype`` value elsewhere) for ``eager``."""
    if implementation == "sdpa":
        return mask
    if implementation == "eager":
        blocked = torch.tensor(torch.finfo(dtype).min, dtype=dtype, device=mask.device)
        return torch.where(mask, torch.zeros((), dtype=dtype, device=mask.device), blocked)
    raise ValueError(
        f"mixed attention needs an attention implementation that takes a 4-D mask "
        f"({', '.join(MASKABLE_ATTENTION)}), found {implementation!r}; load the model with "
        "attn_implementation='sdpa' or call model.backbone.set_attn_implementation('sdpa')"
    )
