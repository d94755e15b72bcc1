"""The real-recipe presets (conf/experiment/sea_llava15_*.yaml; docs/real_recipe.md): they compose, carry
the paper's / LLaVA-1.5's values (sea-method.md section 6, llava-reference.md section 3), and every key
any experiment sets already exists in the composition it overrides (so a typo cannot add a new key)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from omegaconf import DictConfig, OmegaConf

from sea.config import CONF_DIR, compose, flatten, to_yaml

EXPERIMENT_DIR = CONF_DIR / "experiment"
EXPERIMENTS = sorted(p.stem for p in EXPERIMENT_DIR.glob("*.yaml"))
PRESETS = {
    "sea_llava15_gemma2b": {"llm": "google/gemma-2b", "template": "chat", "family": "gemma"},
    "sea_llava15_vicuna7b": {"llm": "lmsys/vicuna-7b-v1.5", "template": "vicuna_v1", "family": "llama"},
}
# Mappings keyed by names the user chooses (arms, benchmarks, models): an experiment may add keys there.
OPEN_MAPPINGS = (
    "align.arm_overrides",
    "instruct.arm_overrides",
    "data.eval_sets",
    "eval.registry",
    "eval.models",
)
# The decoder block FSDP must wrap, per model.llm.family (conf/hardware/accelerate/fsdp.yaml).
FSDP_LAYER = {
    "llama": "LlamaDecoderLayer",
    "gemma": "GemmaDecoderLayer",
    "phi3": "Phi3DecoderLayer",
    "qwen2": "Qwen2DecoderLayer",
}


# ---- the generic check: every key an experiment sets exists without it ------------------------------
def group_overrides(defaults: list[Any]) -> list[str]:
    """Hydra overrides equivalent to an experiment's `defaults:` list (group choices, not keys)."""
    out = []
    for entry in defaults or []:
        if entry == "_self_":
            continue
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ValueError(f"unsupported defaults entry {entry!r} (only `override /group: option`)")
        ((key, option),) = entry.items()
        override = key.startswith("override ")
        group = key.removeprefix("override ").strip().lstrip("/")
        out.append(f"{group}={option}" if override else f"+{group}={option}")
    return out


def set_keys(tree: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the leaves an experiment file sets (lists and empty mappings are leaves)."""
    if not isinstance(tree, dict) or not tree:
        return [prefix]
    keys: list[str] = []
    for key, value in tree.items():
        keys += set_keys(value, f"{prefix}.{key}" if prefix else str(key))
    return keys


def _exists(cfg: DictConfig, dotted: str) -> bool:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return False
        node = node[part]
    return True


def unknown_keys(experiment: str, conf_dir: Path = CONF_DIR, group: str = "experiment") -> list[str]:
    """Keys `conf/<group>/<experiment>.yaml` (an experiment or a recipe) sets that the composition with the
    same group choices but without the file's own keys lacks. Keys under `OPEN_MAPPINGS` may be new."""
    path = Path(conf_dir) / group / f"{experiment}.yaml"
    text = path.read_text(encoding="utf-8")
    assert "# @package _global_" in text, f"{path.name}: {group} files are global packages"
    raw = yaml.safe_load(text) or {}
    defaults = raw.pop("defaults", [])
    # A recipe's keys are checked against the composition without any recipe (`~recipe`).
    base = compose(group_overrides(defaults) + (["~recipe"] if group == "recipe" else []), conf_dir=conf_dir)
    bad = []
    for key in set_keys(raw):
        if any(key == m or key.startswith(m + ".") for m in OPEN_MAPPINGS):
            head = next(m for m in OPEN_MAPPINGS if key == m or key.startswith(m + "."))
            if _exists(base, head):
                continue
        if not _exists(base, key):
            bad.append(key)
        elif isinstance(OmegaConf.select(base, key), DictConfig) and OmegaConf.select(base, key):
            bad.append(f"{key} (replaces a mapping with a value)")
    return bad


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_key_an_experiment_sets_exists_without_it(experiment: str):
    assert unknown_keys(experiment) == [], f"conf/experiment/{experiment}.yaml sets keys that do not exist"


@pytest.mark.parametrize("recipe", sorted(p.stem for p in (CONF_DIR / "recipe").glob("*.yaml")))
def test_every_key_a_recipe_sets_exists_without_it(recipe: str):
    assert unknown_keys(recipe, group="recipe") == [], f"conf/recipe/{recipe}.yaml sets keys that do not exist"


# ---- the composed presets are pinned -----------------------------------------------------------------
COMPOSED = Path(__file__).parent / "fixtures" / "composed"


def config_differences(cfg: DictConfig, reference: Path) -> list[str]:
    """Dotted keys whose value differs between a composition and a stored one (missing on either side
    included); values compared after YAML parsing, so layout and comments do not count."""
    ours = flatten(yaml.safe_load(to_yaml(cfg)))
    theirs = flatten(yaml.safe_load(reference.read_text(encoding="utf-8")))
    return sorted(k for k in set(ours) | set(theirs) if ours.get(k, KeyError) != theirs.get(k, KeyError))


@pytest.mark.parametrize("experiment", sorted(PRESETS))
def test_a_preset_composes_as_stored(experiment: str):
    """conf/recipe/llava15.yaml holds what the presets share: each composes to the stored config (written
    before the shared part moved; `python -m sea.config tests/fixtures/composed/<name>.yaml
    experiment=<name>` after a deliberate change)."""
    diff = config_differences(compose([f"experiment={experiment}"]), COMPOSED / f"{experiment}.yaml")
    assert diff == [], f"experiment={experiment} composes differently from its stored config: {diff}"


def test_the_stored_config_check_sees_a_change():
    cfg = compose(["experiment=sea_llava15_gemma2b", "instruct.train.lr=3e-5", "~eval.probe"])
    diff = config_differences(cfg, COMPOSED / "sea_llava15_gemma2b.yaml")
    assert diff == ["eval.probe.adapters", "eval.probe.enabled", "eval.probe.max_images"] + [
        "eval.probe.max_new_tokens",
        "instruct.train.lr",
    ]


def test_the_key_check_catches_a_typo_and_a_group_choice(tmp_path: Path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    (conf / "experiment" / "typo.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n  - override /data: llava\n  - _self_\n"
        "data:\n  wordlist: {size: 10}\n  world: {n_eval: 3}\n"  # world.* is gone once data=llava
        "align:\n  train: {lr: 1.0e-3, lrr: 2.0}\n  arm_overrides: {extra: {sea: {weight: 0.5}}}\n"
        "label: {top_n: 5, sigh: neg_cosine, background: none}\n"
    )
    assert unknown_keys("typo", conf) == [
        "data.world.n_eval",
        "align.train.lrr",
        "label.sigh",
        "label.background (replaces a mapping with a value)",
    ]
    assert group_overrides([{"override /model/llm": "gemma_2b"}, "_self_", {"/x": "y"}]) == [
        "model/llm=gemma_2b",
        "+x=y",
    ]


# ---- the presets -----------------------------------------------------------------------------------
def test_the_real_recipe_presets_exist():
    assert set(PRESETS) <= set(EXPERIMENTS)


@pytest.fixture(scope="module", params=sorted(PRESETS))
def preset(request) -> tuple[str, DictConfig]:
    return request.param, compose([f"experiment={request.param}"])


def test_data_is_llava_15(preset):
    _, cfg = preset
    assert cfg.data.source == "llava"
    assert cfg.data.pretrain.json.endswith("LLaVA-Pretrain/blip_laion_cc_sbu_558k.json")
    assert cfg.data.pretrain.image_folder.endswith("LLaVA-Pretrain/images")
    assert cfg.data.instruct.json.endswith("llava_v1_5_mix665k.json")
    assert cfg.data.instruct.image_folder == cfg.data.root
    # evaluation on LLaVA's eval files, as conf/data/llava.yaml lays them out under <root>/eval
    assert cfg.eval.benchmarks and set(cfg.eval.benchmarks) <= set(cfg.data.eval_sets)
    for name in cfg.eval.benchmarks:
        assert name in cfg.eval.registry
        assert cfg.data.eval_sets[name].questions.startswith(f"{cfg.data.root}/eval/")
    assert cfg.eval.image_aspect_ratio == "pad"


def test_models_are_the_papers(preset):
    name, cfg = preset
    want = PRESETS[name]
    vision = cfg.model.vision
    assert vision.name.startswith("ViT-L-14-336") and vision.pretrained == "openai"
    assert (vision.image_size, vision.patch_size, vision.select_layer, vision.select_feature) == (
        336,
        14,
        -2,
        "patch",
    )
    assert cfg.model.llm.name_or_path.startswith(want["llm"])
    assert cfg.model.llm.family == want["family"]
    assert cfg.model.llm.max_length == 2048
    assert cfg.model.adapter.type == "mlp2x_gelu"


def test_stage_1_is_llava_pretrain_plus_sea(preset):
    _, cfg = preset
    a = cfg.align
    t = a.train
    assert (t.lr, t.global_batch_size, t.epochs, t.max_steps) == (1.0e-3, 256, 1, None)
    assert (t.warmup_ratio, t.schedule, t.weight_decay, t.min_lr_ratio) == (0.03, "cosine", 0.0, 0.0)
    assert t.gradient_checkpointing and a.template == "plain"
    s = a.sea
    assert s.weight == 1.0 and s.window == 2 and s.sampling == "weighted" and s.dedup
    assert s.learn_logit_scale and s.logit_scale_init == pytest.approx(1 / 0.07) and s.logit_scale_max == 100
    assert a.arm_overrides.baseline.sea.weight == 0.0  # the plain-LLaVA arm


def test_stage_2_is_llava_finetune(preset):
    name, cfg = preset
    i = cfg.instruct
    t = i.train
    assert (t.lr, t.global_batch_size, t.epochs, t.max_steps) == (2.0e-5, 128, 1, None)
    assert (t.warmup_ratio, t.schedule, t.weight_decay, t.min_lr_ratio) == (0.03, "cosine", 0.0, 0.0)
    assert t.gradient_checkpointing
    assert i.tune.llm == "full" and i.tune.adapter and not i.tune.vision
    assert i.template == PRESETS[name]["template"] == cfg.model.llm.template
    assert i.image_aspect_ratio == "pad"


def test_labels_use_the_real_clip_and_pick_the_variant_by_caption_agreement(preset):
    _, cfg = preset
    lab = cfg.label
    assert lab.top_n == 10 and lab.min_score == 0.0
    # the paper's proj / neg_cosine is one of the four variants `auto` measures on the captions
    assert lab.sign == "auto" and lab.feature == "auto" and lab.background.mode == "none"
    assert lab.guard.enabled and lab.teacher is None
    assert cfg.align.sea.gather is None  # the global contrastive batch on several GPUs


def test_hardware_is_a_gpu_preset_that_keeps_the_global_batches(preset):
    name, cfg = preset
    hw = cfg.hardware
    assert hw.device == "cuda" and hw.mixed_precision == "bf16" and hw.num_processes >= 1
    for stage in ("align", "instruct"):
        t = cfg[stage].train
        for gpus in {1, 2, 4, 8, int(hw.num_processes)}:  # accumulation = global / (per device x GPUs)
            assert t.global_batch_size % (t.per_device_batch_size * gpus) == 0, (stage, gpus)
    if hw.accelerate_config:
        launch = yaml.safe_load((CONF_DIR.parent / hw.accelerate_config).read_text())
        assert launch["mixed_precision"] == "bf16" and launch["num_processes"] == hw.num_processes
        if launch["distributed_type"] == "FSDP":
            wrap = launch["fsdp_config"]["fsdp_transformer_layer_cls_to_wrap"]
            assert wrap == FSDP_LAYER[PRESETS[name]["family"]], f"{name}: FSDP would wrap {wrap}"
            # one dtype per flattened unit: frozen weights in bf16 next to fp32 trainable ones fail FSDP
            for stage in ("align", "instruct"):
                assert cfg[stage].train.frozen_dtype == "float32", f"{name}: {stage} under FSDP"


@pytest.mark.filterwarnings("ignore:FSDP is switching to use `NO_SHARD`")
def test_fsdp_needs_one_dtype_per_unit(monkeypatch):
    """Why the FSDP preset keeps frozen weights in fp32: FSDP refuses a unit mixing bf16 and fp32."""
    import torch
    import torch.distributed as dist
    from torch import nn
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    if not dist.is_available():
        pytest.skip("torch.distributed unavailable")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29561")
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        for frozen, ok in ((torch.bfloat16, False), (torch.float32, True)):
            model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
            model[0].requires_grad_(False)
            model[0].to(frozen)
            if ok:
                FSDP(model, use_orig_params=True, device_id=torch.device("cpu"))
            else:
                with pytest.raises(ValueError, match="uniform dtype"):
                    FSDP(model, use_orig_params=True, device_id=torch.device("cpu"))
    finally:
        dist.destroy_process_group()


def test_settings_objects_accept_the_presets(preset):
    from sea.labeling.labeler import LabelSettings
    from sea.training.loop import TrainSettings
    from sea.training.sea_loss import SeaSettings

    _, cfg = preset
    TrainSettings.from_config(cfg.align.train, "align.train")
    TrainSettings.from_config(cfg.instruct.train, "instruct.train")
    SeaSettings.from_config(cfg.align.sea)
    settings = LabelSettings.from_config(cfg.label)
    assert settings.auto and settings.background.mode == "none"


def test_command_line_overrides_win_over_a_preset(tmp_path: Path):
    cfg = compose(["experiment=sea_llava15_gemma2b", f"data.root={tmp_path}", "hardware=gpu1"])
    assert cfg.data.pretrain.json == f"{tmp_path}/LLaVA-Pretrain/blip_laion_cc_sbu_558k.json"
    assert cfg.eval.diagnostics.captions == cfg.data.pretrain.json
    assert cfg.hardware.num_processes == 1 and cfg.hardware.accelerate_config is None


@pytest.mark.parametrize("experiment", sorted(PRESETS))
def test_lora_on_top_of_a_preset_is_the_group_choice(experiment: str):
    """The recipe comes after the `instruct` option in the defaults list and leaves its keys (lr, tune)
    alone, so `instruct=lora` gives LLaVA's LoRA recipe on a preset; the rest of the preset stays."""
    full = compose([f"experiment={experiment}"])
    cfg = compose([f"experiment={experiment}", "instruct=lora"])
    assert cfg.instruct.tune.llm == "lora" and full.instruct.tune.llm == "full"
    assert cfg.instruct.train.lr == 2e-4 and full.instruct.train.lr == 2e-5
    assert cfg.instruct.tune.adapter_lr == 2e-5
    assert cfg.instruct.train.per_device_batch_size == full.instruct.train.per_device_batch_size
    assert {k: v for k, v in flatten(OmegaConf.to_container(cfg)).items() if not k.startswith("instruct.")} == {
        k: v for k, v in flatten(OmegaConf.to_container(full)).items() if not k.startswith("instruct.")
    }
