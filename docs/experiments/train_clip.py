import sys
from pathlib import Path
from sea.config import compose
from sea.backbones.clip_train import train_clip
from sea.tracking import current
from omegaconf import OmegaConf
root, src, *ov = sys.argv[1:]
cfg = compose([f"paths.root={root}", f"paths.world={src}/world", "tracking=none", *ov])
vcfg = OmegaConf.to_container(cfg.model.vision, resolve=True)
bcfg = OmegaConf.to_container(cfg.backbones, resolve=True)
m = train_clip(Path(cfg.paths.world), vcfg, bcfg["clip"], int(cfg.seed), Path(root) / "backbones" / "clip", current())
print({k: v for k, v in m.items() if "acc" in k})
