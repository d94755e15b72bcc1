"""Train only the tiny LM into <root>/backbones/llm with overrides; copy CLIP from a source root."""
import sys, shutil
from pathlib import Path
from sea.config import compose
from sea.backbones.lm_train import train_lm
from sea.tracking import current
from omegaconf import OmegaConf
root, src, *ov = sys.argv[1:]
cfg = compose([f"paths.root={root}", f"paths.world={src}/world", "tracking=none", *ov])
out = Path(root) / "backbones"
if not (out / "clip").exists():
    shutil.copytree(Path(src) / "backbones" / "clip", out / "clip")
lcfg = OmegaConf.to_container(cfg.model.llm, resolve=True)
bcfg = OmegaConf.to_container(cfg.backbones.llm, resolve=True)
m = train_lm(Path(cfg.paths.world), lcfg, bcfg, int(cfg.seed), out / "llm", current())
print(m)
