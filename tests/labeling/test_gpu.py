"""The stage's GPU path (bf16 autocast features and scoring) agrees with CPU fp32 (needs CUDA)."""

from __future__ import annotations

import pytest
import torch

from sea.labeling.labeler import Labeler, LabelSettings
from sea.labeling.scoring import BackgroundFilter

pytestmark = pytest.mark.gpu


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_cuda_labels_match_cpu_fp32(tmp_path) -> None:
    from sea.models.tiny import tiny_vision_cfg
    from sea.models.vision import VisionTower

    vcfg = tiny_vision_cfg(tmp_path, image_size=64, patch_size=8, width=64, layers=2, heads=2, embed_dim=32)
    words = [f"w{i}" for i in range(500)]
    text = torch.nn.functional.normalize(
        torch.randn(500, 32, generator=torch.Generator().manual_seed(0)), dim=-1
    )
    images = torch.randn(16, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    settings = LabelSettings(top_n=10, feature="maskclip", background=BackgroundFilter("none"))
    cpu = Labeler(VisionTower.from_config(vcfg), text, words, settings).label_batch(images)
    gpu_labeler = Labeler(
        VisionTower.from_config(vcfg, device="cuda"), text, words, settings, mixed_precision="bf16"
    )
    assert gpu_labeler.matmul_dtype == torch.bfloat16
    ids, scores = (t.cpu() for t in gpu_labeler.label_batch(images))
    assert ids.dtype == torch.int32 and scores.dtype == torch.float16
    top1 = (ids[..., 0] == cpu[0][..., 0]).float().mean()
    assert top1 > 0.8, f"bf16 top-1 agrees with fp32 on {top1:.1%} of patches"
    same = (ids[..., 0] == cpu[0][..., 0]) & (ids[..., 0] >= 0)
    diff = (scores[..., 0].float() - cpu[1][..., 0].float()).abs()[same]
    assert diff.max() < 0.02, f"bf16 top-1 scores differ from fp32 by up to {diff.max():.3f}"
