# Run a `sea` stage with the vision tower replaced by perfect per-patch features from the world's ground truth
# (one-hot colour / shape / background per patch): does the LM side learn to read the image then?
import sys, json, torch, os
from pathlib import Path
import sea.models.vision as V
root = Path(os.environ["GT_ROOT"]); world = root / "world"
idx_path = root / "gtindex.pt"
def key(px):  # px (3, H, W) -> str
    m = px.reshape(3, 8, 8, 8, 8).mean(dim=(2, 4)).sum(0)
    return ",".join(f"{v:.2f}" for v in m.flatten().tolist())
def build():
    from sea.config import compose
    from PIL import Image
    cfg = compose([f"paths.root={root}", "tracking=none"])
    tower = V.VisionTower.from_config(cfg.model.vision)
    wj = json.load(open(world / "world.json"))["vocabulary"]
    colors, shapes, bgs = wj["colors"], wj["shapes"], wj["backgrounds"]
    index = {}
    for split in ("pretrain", "instruct", "eval"):
        for line in open(world / f"ground_truth/{split}.jsonl"):
            r = json.loads(line)
            px = tower.preprocess(Image.open(world / r["image"]).convert("RGB"))
            objs = {o["index"]: o for o in r["objects"]}
            f = torch.zeros(64, tower.hidden_size)
            for i, row in enumerate(r["patch_objects"]):
                for j, k in enumerate(row):
                    p = i * 8 + j
                    if k == 0: f[p, 12 + bgs.index(r["background"])] = 1
                    else:
                        f[p, colors.index(objs[k]["color"])] = 1; f[p, 7 + shapes.index(objs[k]["shape"])] = 1
            index[key(px)] = f
    torch.save(index, idx_path); return index
INDEX = torch.load(idx_path) if idx_path.exists() else build()
SCALE = float(os.environ.get("GT_SCALE", "1"))
def forward(self, images):
    out = []
    for px in images:
        k = key(px.float().cpu())
        if k not in INDEX: raise KeyError("no ground truth for an image")
        out.append(INDEX[k])
    return (torch.stack(out) * SCALE).to(images.device)
V.VisionTower.forward = forward
if __name__ == "__main__":
    from sea.__main__ import main
    sys.exit(main(sys.argv[1:]))
