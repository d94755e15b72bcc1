import sys
from pathlib import Path
from sea.config import compose
from sea.stages.evaluate import stage1_probe
from omegaconf import OmegaConf
root, arm, *ov = sys.argv[1:]
cfg = compose([f"paths.root={root}", "tracking=none", *ov])
e = OmegaConf.to_container(cfg.eval, resolve=True)
m = stage1_probe(cfg, e["probe"], e["diagnostics"], f"seed0/{arm}", 32, Path(root) / "probe" / arm)
print({k: round(v, 1) for k, v in m.items() if "f1" in k})
