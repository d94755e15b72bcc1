"""SeaMLLM: splicing, truncation, gradients, mixed batches, save/load, from_config."""

from __future__ import annotations

import logging

import pytest
import torch
from safetensors import safe_open

from sea.data.llava import IGNORE_INDEX
from sea.data.llava import IMAGE_TOKEN_INDEX as IMG
from sea.errors import SeaError
from sea.models.mllm import SeaMLLM


def prompts(tok) -> list[list[int]]:
    """Two image samples (placeholder after a prefix) and one text-only sample, all different lengths."""
    return [
        tok("USER:").input_ids + [IMG] + tok(" What colour is the circle?").input_ids,
        tok("Hi").input_ids + [IMG] + tok(" shape?").input_ids,
        tok("A chat between a curious user and an assistant.").input_ids,
    ]


def test_visual_tokens_land_exactly_at_the_placeholder(make_mllm, images, pad_batch) -> None:
    model = make_mllm()
    rows = prompts(model.tokenizer)
    ids, mask, labels = pad_batch(rows)
    mm = model.prepare_multimodal_inputs(ids, labels, mask, images[:2])
    n = model.vision.num_patches
    embed = model.llm.get_input_embeddings()
    assert mm.visual_embeds.shape == (2, n, 32)
    assert mm.image_rows.tolist() == [0, 1]
    for j, row in enumerate(rows[:2]):
        p = row.index(IMG)
        assert mm.image_positions[j] == p and mm.image_lengths[j] == n
        e, lab = mm.inputs_embeds[j], mm.labels[j]
        torch.testing.assert_close(e[p : p + n], model.encode_images(images[j : j + 1])[0])
        torch.testing.assert_close(e[:p], embed(torch.tensor(row[:p])))
        torch.testing.assert_close(e[p + n : p + n + len(row) - p - 1], embed(torch.tensor(row[p + 1 :])))
        assert (lab[p : p + n] == IGNORE_INDEX).all()
        assert lab[:p].tolist() == row[:p] and lab[p + n : len(row) - 1 + n].tolist() == row[p + 1 :]
        assert mm.attention_mask[j].sum() == len(row) - 1 + n
        assert mm.position_ids[j, : len(row) - 1 + n].tolist() == list(range(len(row) - 1 + n))
    text = rows[2]
    torch.testing.assert_close(mm.inputs_embeds[2, : len(text)], embed(torch.tensor(text)))
    assert mm.attention_mask[2].sum() == len(text)
    assert (mm.labels[2, len(text) :] == IGNORE_INDEX).all()


def test_text_only_rows_match_the_llm_alone(make_mllm, images, pad_batch) -> None:
    model = make_mllm()
    rows = prompts(model.tokenizer)
    ids, mask, labels = pad_batch(rows)
    with torch.no_grad():
        out = model(ids, labels, mask, images[:2])
        text = torch.tensor([rows[2]])
        alone = model.llm(input_ids=text).logits[0]
        torch.testing.assert_close(out.logits[2, : len(rows[2])], alone, atol=1e-5, rtol=1e-5)
        # An image row does not depend on its batch neighbours either.
        single = model(
            ids[:1, : len(rows[0])], labels[:1, : len(rows[0])], mask[:1, : len(rows[0])], images[:1]
        )
        width = single.logits.shape[1]
        torch.testing.assert_close(out.logits[0, :width], single.logits[0], atol=1e-5, rtol=1e-5)


def test_image_argument_layouts_agree(make_mllm, images, pad_batch) -> None:
    model = make_mllm()
    ids, mask, labels = pad_batch(prompts(model.tokenizer))
    with torch.no_grad():
        ref = model(ids, labels, mask, images[:2]).logits
        llava_style = torch.cat([images[:2], torch.zeros(1, 3, 32, 32)])  # a dummy image for the text row
        torch.testing.assert_close(model(ids, labels, mask, llava_style).logits, ref)
        torch.testing.assert_close(model(ids, labels, mask, [images[0], images[1], None]).logits, ref)
    with pytest.raises(SeaError, match="no images"):
        model(ids, labels, mask, None)
    with pytest.raises(SeaError, match="placeholders"):
        model(ids, labels, mask, images[:1])


def test_loss_matches_a_manual_cross_entropy(make_mllm, images, pad_batch) -> None:
    model = make_mllm()
    ids, mask, labels = pad_batch(prompts(model.tokenizer))
    with torch.no_grad():
        out = model(ids, labels, mask, images[:2])
    logits, target = out.logits[:, :-1], out.labels[:, 1:]
    manual = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
    torch.testing.assert_close(out.loss, manual)


def test_truncation_after_expansion_is_counted(make_mllm, images, pad_batch, caplog, tower) -> None:
    probe = make_mllm()
    rows = prompts(probe.tokenizer)
    limit = max(len(r) for r in rows)  # every raw row fits; the image rows overflow once expanded
    model = make_mllm(max_length=limit)
    ids, mask, labels = pad_batch(rows)
    with caplog.at_level(logging.WARNING, logger="sea.models.mllm"):
        out = model(ids, labels, mask, images[:2])
    assert out.num_truncated == 2 == model.num_truncated
    assert out.logits.shape[1] == limit and out.attention_mask.sum(1).tolist() == [limit, limit, len(rows[2])]
    assert "2 of 3 sequences exceed max_length" in caplog.text
    n = tower.num_patches
    assert out.image_lengths.tolist() == [min(n, limit - r.index(IMG)) for r in rows[:2]]
    model(ids, labels, mask, images[:2])
    assert model.num_truncated == 4 and model.num_sequences == 6


def test_gradients_reach_the_adapter_not_the_tower(make_mllm, images, pad_batch) -> None:
    model = make_mllm()
    model.set_trainable(adapter=True, llm=False)
    ids, mask, labels = pad_batch(prompts(model.tokenizer))
    out = model(ids, labels, mask, images[:2])
    (out.loss + out.visual_embeds.pow(2).mean()).backward()  # LM loss + a stand-in for SEA's token loss
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.adapter.parameters())
    assert all(p.grad is None for p in model.vision.parameters())
    assert all(p.grad is None for p in model.llm.parameters())
    model.set_trainable(adapter=True, llm=True)
    model.zero_grad()
    model(ids, labels, mask, images[:2]).loss.backward()
    assert model.llm.get_input_embeddings().weight.grad is not None


def test_text_only_batch_keeps_the_adapter_in_the_graph(make_mllm, pad_batch) -> None:
    model = make_mllm()
    model.set_trainable(adapter=True, llm=False)
    ids, mask, labels = pad_batch([prompts(model.tokenizer)[2]])
    out = model(ids, labels, mask)
    assert out.visual_embeds is None and out.image_rows.numel() == 0
    out.loss.backward()
    grads = [p.grad for p in model.adapter.parameters()]
    assert all(g is not None and g.abs().sum() == 0 for g in grads)  # in the graph, zero contribution


def test_left_padding_for_generation(make_mllm, images, pad_batch) -> None:
    model = make_mllm()
    rows = prompts(model.tokenizer)
    ids, mask, _ = pad_batch(rows)
    mm = model.prepare_multimodal_inputs(ids, None, mask, images[:2], padding_side="left")
    width = mm.inputs_embeds.shape[1]
    n0 = len(rows[0]) - 1 + 16
    assert mm.attention_mask[0, width - n0 :].all() and not mm.attention_mask[0, : width - n0].any()
    assert mm.image_positions[0] == width - n0 + rows[0].index(IMG)
    assert mm.position_ids[0, width - n0 :].tolist() == list(range(n0))


def test_batched_generation_equals_one_by_one(make_mllm, images) -> None:
    model = make_mllm()
    rows = prompts(model.tokenizer)
    batched = model.generate(rows, images[:2], max_new_tokens=6, eos_token_ids=[model.tokenizer.eos_token_id])
    single = [
        model.generate([rows[0]], images[0:1], max_new_tokens=6, eos_token_ids=model.tokenizer.eos_token_id),
        model.generate([rows[1]], images[1:2], max_new_tokens=6, eos_token_ids=model.tokenizer.eos_token_id),
        model.generate([rows[2]], None, max_new_tokens=6, eos_token_ids=model.tokenizer.eos_token_id),
    ]
    assert batched == [s[0] for s in single]
    assert all(len(r) == 6 for r in batched)
    text_only = model.generate([rows[2]], None, max_new_tokens=6, eos_token_ids=model.tokenizer.eos_token_id)
    with torch.no_grad():  # the HF model's own greedy decoding on the plain ids
        ref = model.llm.generate(
            torch.tensor([rows[2]]), max_new_tokens=6, do_sample=False, eos_token_id=None
        )
    assert text_only[0] == ref[0, len(rows[2]) :].tolist()
    # Stop at an end-of-turn token: the first token generated for prompt 0 ends its answer at once.
    stop = batched[0][0]
    cut = model.generate(
        rows, images[:2], max_new_tokens=6, eos_token_ids=[stop, model.tokenizer.eos_token_id]
    )
    assert cut[0] == []
    expected = batched[1][: batched[1].index(stop)] if stop in batched[1] else batched[1]
    assert cut[1] == expected


@pytest.mark.parametrize("family", ["gemma", "phi3", "qwen2"])
def test_other_llm_families(family, tower, images, pad_batch, tmp_path) -> None:
    """Gemma scales input embeddings inside the model; Phi-3 and Qwen2 differ in attention details: the
    inputs_embeds path must still equal the plain ids path, and batched decoding the one-by-one one."""
    from sea.models.adapter import build_adapter
    from sea.models.llm import load_llm
    from sea.models.tiny import save_tiny_llm

    llm, tok = load_llm({"name_or_path": str(save_tiny_llm(tmp_path / "llm", family)), "max_length": 64})
    model = SeaMLLM(tower, build_adapter("mlp2x_gelu", 32, 32), llm, tok, max_length=64)
    rows = prompts(tok)
    ids, mask, labels = pad_batch(rows)
    with torch.no_grad():
        out = model(ids, labels, mask, images[:2])
        alone = llm(input_ids=torch.tensor([rows[2]])).logits[0]
    torch.testing.assert_close(out.logits[2, : len(rows[2])], alone, atol=1e-5, rtol=1e-5)
    eos = tok.eos_token_id
    batched = model.generate(rows, images[:2], max_new_tokens=4, eos_token_ids=eos)
    single = [
        model.generate([r], images[i : i + 1] if IMG in r else None, 4, eos)[0] for i, r in enumerate(rows)
    ]
    assert batched == single


def test_save_load_round_trip(make_mllm, images, pad_batch, tmp_path) -> None:
    model = make_mllm()
    with torch.no_grad():  # make the adapter non-trivial
        for p in model.adapter.parameters():
            p.add_(0.1)
    ids, mask, labels = pad_batch(prompts(model.tokenizer))
    model.save_pretrained(tmp_path / "mllm")
    assert {p.name for p in (tmp_path / "mllm").iterdir()} == {
        "sea_mllm.json",
        "vision",
        "adapter.safetensors",
        "llm",
    }
    with safe_open(str(tmp_path / "mllm" / "adapter.safetensors"), framework="pt") as f:
        assert sorted(f.keys())[0] == "mm_projector.0.bias"
    again = SeaMLLM.load(tmp_path / "mllm", device="cpu")
    with torch.no_grad():
        a = model(ids, labels, mask, images[:2])
        b = again(ids, labels, mask, images[:2])
    torch.testing.assert_close(b.logits, a.logits, rtol=0, atol=0)
    assert again.max_length == model.max_length and again.adapter_type == "mlp2x_gelu"
    assert again.vision.preprocess_signature() == model.vision.preprocess_signature()


def test_from_config(vision_cfg, llm_dir, images, pad_batch) -> None:
    from sea.config import compose

    cfg = compose(
        [
            f"model.vision.name={vision_cfg['name']}",
            f"model.vision.model_config={vision_cfg['model_config']}",
            f"model.vision.pretrained={vision_cfg['pretrained']}",
            "model.vision.image_size=32",
            f"model.llm.name_or_path={llm_dir}",
            "model/adapter=linear",
        ]
    )
    model = SeaMLLM.from_config(cfg)
    assert model.adapter_type == "linear" and model.max_length == cfg.model.llm.max_length
    assert model.vision.grid == (4, 4) and model.vision.select_layer == -2
    ids, mask, labels = pad_batch(prompts(model.tokenizer))
    assert model(ids, labels, mask, images[:2]).loss.isfinite()
