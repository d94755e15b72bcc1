"""Parts of the `backbones` stage that need no training: the CLIP's patch-word targets and loss, and the
LM corpus lines in stage 2's chat format."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from sea.backbones.clip_loss import PatchWordLoss, word_targets
from sea.backbones.lm_train import instruct_lines
from sea.errors import SeaError

WORDS = ["red", "blue", "green", "circle", "square", "star", "gray", "navy", "background"]
BACKGROUNDS = ["gray", "navy", "background"]


def test_word_targets_know_objects_always_and_backgrounds_only_when_named():
    t = word_targets(
        ["a red circle and a blue square on a gray background.", "a green star."], WORDS, BACKGROUNDS
    )
    assert t[0].tolist() == [1, 1, 0, 1, 1, 0, 1, 0, 1]
    # No background phrase: the background words are unknown (-1), the object words still known.
    assert t[1].tolist() == [0, 0, 1, 0, 0, 1, -1, -1, -1]


def test_patch_word_loss_pulls_a_patch_to_each_named_word_and_ignores_unknowns():
    torch.manual_seed(0)
    words = F.normalize(torch.randn(len(WORDS), 16), dim=-1)
    patches = torch.nn.Parameter(torch.randn(2, 6, 16))
    loss_fn = PatchWordLoss(1.0, WORDS, BACKGROUNDS)
    captions = ["a red circle.", "a blue star."]
    opt = torch.optim.Adam([patches, *loss_fn.parameters()], lr=0.05)
    first = None
    for _ in range(150):
        loss = loss_fn(F.normalize(patches, dim=-1), words, captions, 10.0)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first
    best = torch.einsum("npd,wd->nwp", F.normalize(patches.detach(), dim=-1), words).amax(-1)
    named = word_targets(captions, WORDS, BACKGROUNDS) == 1
    absent = word_targets(captions, WORDS, BACKGROUNDS) == 0
    for i in range(2):
        assert best[i][named[i]].min() > best[i][absent[i]].max()
    # Background words are unknown for both captions: no gradient reaches them through the loss.
    w = words.clone().requires_grad_(True)
    loss_fn(F.normalize(patches.detach(), dim=-1), w, captions, 10.0).backward()
    assert torch.all(w.grad[[WORDS.index(b) for b in BACKGROUNDS]] == 0)
    assert w.grad[WORDS.index("red")].abs().sum() > 0


def _sample(*pairs, image=True):
    turns = []
    for i, (q, a) in enumerate(pairs):
        turns += [
            {"from": "human", "value": ("<image>\n" if image and i == 0 else "") + q},
            {"from": "gpt", "value": a},
        ]
    return {"id": "s", "conversations": turns}


def test_instruct_lines_plain_and_in_the_stage_2_chat_text():
    from sea.data.templates import VICUNA_SYSTEM, VicunaV1Template, _llava_turns

    sample = _sample(("Is there a red star?", "Yes"), ("What color is the star?", "red"))
    assert instruct_lines([sample]) == ["Is there a red star? Yes", "What color is the star? red"]
    (line,) = instruct_lines([sample], "vicuna_v1")
    assert line.startswith(VICUNA_SYSTEM + " USER: ")

    class Tok:
        eos_token = "</s>"
        bos_token_id = None

        def __call__(self, *a, **k):
            return {"input_ids": []}

        def encode(self, *a, **k):
            return []

    _, segments = VicunaV1Template().render(_llava_turns(sample["conversations"], True), Tok(), False)
    stage2 = "".join(s.text for s in segments).replace("<image>\n", "")
    # The same text as stage 2 sees, less the image and the last `</s>` (which `pack` adds).
    assert " ".join(stage2.split()) == line + "</s>"
    with pytest.raises(SeaError, match="instruct_format"):
        instruct_lines([sample], "chatml")
