"""GDMTL's mixed attention (§4.2, eq. 7): the mask's content, and proof that the encoder applies it.

The leak tests change one target token and compare the states before and after it: under the mixed mask
the earlier target positions (and the whole source) must not move, under plain bidirectional attention
they do. A mask the encoder silently ignored would therefore fail them.
"""

from __future__ import annotations

import pytest
import torch

from auxir.models.attention_masks import for_attention, mixed_attention_mask
from auxir.models.cross_encoder import CrossEncoder, CrossEncoderConfig
from auxir.models.pair_template import PairTemplate

IMPLEMENTATIONS = ("eager", "sdpa")
CLS, SEP, PAD = 2, 3, 0


def hand_template() -> PairTemplate:
    return PairTemplate(
        prefix=(CLS,), middle=(SEP,), suffix=(SEP,), first_type=0, second_type=1, pad_id=PAD, mask_id=4
    )


def test_mixed_mask_of_a_hand_made_doc_first_pair():
    # row 0: [CLS] d d [SEP] | q q [SEP]        (source 0..3, target 4..6)
    # row 1: [CLS] d [SEP] | q [SEP] pad pad    (source 0..2, target 3..4, padding 5..6)
    doc, doc_len = torch.tensor([[11, 12], [13, PAD]]), torch.tensor([2, 1])
    query, query_len = torch.tensor([[21, 22], [23, PAD]]), torch.tensor([2, 1])
    packed = hand_template().pack(doc, doc_len, query, query_len)  # the document first, as GDMTL packs it
    assert packed.input_ids.tolist() == [[CLS, 11, 12, SEP, 21, 22, SEP], [CLS, 13, SEP, 23, SEP, PAD, PAD]]
    assert packed.second_offset.tolist() == [[4], [3]]

    mask = mixed_attention_mask(packed.attention_mask, packed.second_offset)
    assert mask.shape == (2, 1, 7, 7) and mask.dtype == torch.bool
    expected_0 = [
        [1, 1, 1, 1, 0, 0, 0],  # source rows: the source only, both ways
        [1, 1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 1, 0, 0],  # target rows: the source and the target up to themselves
        [1, 1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 1, 1],
    ]
    expected_1 = [
        [1, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 0, 0],  # padding rows: every real token, never a padding key
        [1, 1, 1, 1, 1, 0, 0],
    ]
    assert mask[0, 0].int().tolist() == expected_0
    assert mask[1, 0].int().tolist() == expected_1


def test_each_attention_implementation_gets_the_form_it_reads():
    mask = torch.tensor([[True, False], [True, True]]).view(1, 1, 2, 2)
    assert torch.equal(for_attention(mask, "sdpa", torch.float32), mask)
    additive = for_attention(mask, "eager", torch.float32)
    lowest = torch.finfo(torch.float32).min
    assert additive.dtype == torch.float32
    assert additive.view(-1).tolist() == [0.0, lowest, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"eager, sdpa.*'flash_attention_2'"):
        for_attention(mask, "flash_attention_2", torch.float32)


def model_with(tiny_bert, implementation: str) -> CrossEncoder:
    torch.manual_seed(0)
    model = CrossEncoder.from_pretrained(
        str(tiny_bert), CrossEncoderConfig(max_length=48, max_query_length=8, segment_order="doc_first")
    )
    try:
        model.backbone.set_attn_implementation(implementation)
    except (ValueError, ImportError) as error:
        pytest.skip(f"attention implementation {implementation!r} not available: {error}")
    assert model.backbone.config._attn_implementation == implementation
    return model.eval()


def source_and_targets(model):
    """Two rows (the second shorter: padding in both segments) and a copy whose target token j differs."""
    ids = model.tokenizer.convert_tokens_to_ids
    source = torch.tensor(
        [ids(["the", "cat", "is", "a", "kitten"]), ids(["dog", "bark", "bone", "[PAD]", "[PAD]"])]
    )
    target = torch.tensor(
        [ids(["cat", "fur", "purr", "mouse", "kitten"]), ids(["dog", "leash", "puppy", "bone", "[PAD]"])]
    )
    source_len, target_len = torch.tensor([5, 3]), torch.tensor([5, 4])
    return source, source_len, target, target_len


J = 2  # the target token that is changed


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16-autocast"])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_a_later_target_token_never_reaches_earlier_positions(tiny_bert, implementation, bf16):
    model = model_with(tiny_bert, implementation)
    source, source_len, target, target_len = source_and_targets(model)
    changed = target.clone()
    changed[:, J] = model.tokenizer.convert_tokens_to_ids("star")
    # bf16: as the trainer runs on a GPU (fp32 weights, bf16 matmuls), here on the CPU
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        before = model.mixed_attention(source, source_len, target, target_len)
        after = model.mixed_attention(source, source_len, changed, target_len)
        logits_before = model.token_head(before.last_hidden_state)  # (n, W, V)
        logits_after = model.token_head(after.last_hidden_state)
    for row in range(2):
        start = int(before.target_start[row])
        end = start + int(target_len[row]) + 1  # the target and the [SEP] after it
        cut = start + J  # position of the changed token
        for states_before, states_after in (
            (before.last_hidden_state, after.last_hidden_state),
            (logits_before, logits_after),
        ):
            # the source and the target positions before J: unchanged
            torch.testing.assert_close(states_before[row, :cut], states_after[row, :cut], atol=1e-5, rtol=0)
            # J and every later target position: changed
            moved = (states_before[row, cut:end] - states_after[row, cut:end]).abs().amax(-1)  # (end - cut,)
            assert (moved > 1e-4).all(), moved


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_without_the_mask_earlier_positions_do_change(tiny_bert, implementation):
    """The control: the same change under the plain padding mask (bidirectional) moves every position, so
    the test above would fail if the mixed mask were dropped on the way to the attention."""
    model = model_with(tiny_bert, implementation)
    source, source_len, target, target_len = source_and_targets(model)
    changed = target.clone()
    changed[:, J] = model.tokenizer.convert_tokens_to_ids("star")
    states = []
    with torch.no_grad():
        for tgt in (target, changed):
            packed = model.template.pack(source, source_len, tgt, target_len)
            out = model.backbone.base_model(
                input_ids=packed.input_ids,
                attention_mask=packed.attention_mask,
                token_type_ids=packed.token_type_ids,
            )
            states.append(out.last_hidden_state)
    start = int(packed.second_offset[0])
    moved = (states[0][0, : start + J] - states[1][0, : start + J]).abs().amax(-1)
    assert (moved > 1e-4).all(), moved


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_padding_is_never_attended(tiny_bert, implementation):
    model = model_with(tiny_bert, implementation)
    source, source_len, target, target_len = source_and_targets(model)
    packed = model.template.pack(source, source_len, target, target_len)
    mask = mixed_attention_mask(packed.attention_mask, packed.second_offset)
    dtype = model.backbone.get_input_embeddings().weight.dtype
    other = packed.input_ids.masked_fill(
        packed.attention_mask == 0, model.tokenizer.convert_tokens_to_ids("moon")
    )
    states = []
    with torch.no_grad():
        for ids in (packed.input_ids, other):
            out = model.backbone.base_model(
                input_ids=ids,
                attention_mask=for_attention(mask, implementation, dtype),
                token_type_ids=packed.token_type_ids,
            )
            states.append(out.last_hidden_state)
    real = packed.attention_mask.bool()
    assert (~real).any()  # the second row is padded
    torch.testing.assert_close(states[0][real], states[1][real], atol=1e-5, rtol=0)


def test_eager_reads_a_boolean_mask_as_a_bias(tiny_bert):
    """Why ``for_attention`` exists: eager attention adds the mask to its scores, so a boolean mask passed
    as it is (True = 1, False = 0) masks nothing and the later token leaks."""
    model = model_with(tiny_bert, "eager")
    source, source_len, target, target_len = source_and_targets(model)
    changed = target.clone()
    changed[:, J] = model.tokenizer.convert_tokens_to_ids("star")
    states = []
    with torch.no_grad():
        for tgt in (target, changed):
            packed = model.template.pack(source, source_len, tgt, target_len)
            mask = mixed_attention_mask(packed.attention_mask, packed.second_offset)
            out = model.backbone.base_model(
                input_ids=packed.input_ids, attention_mask=mask, token_type_ids=packed.token_type_ids
            )
            states.append(out.last_hidden_state)
    start = int(packed.second_offset[0])
    assert (states[0][0, : start + J] - states[1][0, : start + J]).abs().max() > 1e-4
