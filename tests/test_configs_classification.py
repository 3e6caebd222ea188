"""Scene-classification configs (EuroSAT, BigEarthNet S2/S1/MM, RESISC45) and the protocol pieces behind them.

Every shipped classification config runs in-process (``terratorch fit``, tiny backbone, ``fast_dev_run``) on tiny
generated files in the dataset's real layout (generators in :mod:`smarties_terratorch.testing`), and once on the
six real BigEarthNet patches of ``bigearthnet-common``. Unit tests cover the linear probe (BatchNorm without
affine + Linear on the normed CLS token, frozen backbone), layer-wise lr decay, the cosine schedule, the
multi-label metric/loss, S1+S2 fusion shapes and bad input.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import rasterio
import torch
import yaml
from rasterio.transform import from_origin
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from cli_utils import CONFIGS, run_config, tiny_model_args  # noqa: E402

from smarties_terratorch.datasets.bigearthnet import S2_L2A_BANDS, read_bigearthnet_s2, read_labels, to_bigearthnet19
from smarties_terratorch.datamodules.bigearthnet import (  # noqa: E402
    BigEarthNetDataModule,
    BigEarthNetDataset,
)
from smarties_terratorch.datasets.eurosat import EUROSAT_BANDS  # noqa: E402
from smarties_terratorch.datamodules.eurosat import EuroSATDataModule  # noqa: E402
from smarties_terratorch.datamodules.resisc45 import RESISC45DataModule  # noqa: E402
from smarties_terratorch.datamodules.classification import holdout_indices, random_resized_crop  # noqa: E402
from smarties_terratorch.tasks.classification import (  # noqa: E402
    LabelSmoothedMultiLabelLoss,
    SmartiesClassificationTask,
    SmartiesClsToken,
    SmartiesLinearProbeDecoder,
)
from smarties_terratorch.tasks.schedules import cosine_warmup_factor  # noqa: E402
from smarties_terratorch.backbone import smarties_vit_tiny_patch16  # noqa: E402

DATA = Path(__file__).parent / "data"
S2 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]


def _generator(name: str) -> ModuleType:
    return importlib.import_module(f"smarties_terratorch.testing.{name}")


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("classification_data")
    return {
        "eurosat": _generator("eurosat").make(root / "eurosat"),
        "resisc45": _generator("resisc45").make(root / "resisc45"),
        "bigearthnet": _generator("bigearthnet").make(root / "bigearthnet"),
    }


def _data_overrides(config: str, fx: dict[str, Path]) -> dict:
    common = {"data.init_args.batch_size": 2, "data.init_args.num_workers": 0}
    if config.startswith("eurosat"):
        splits = fx["eurosat"].parent / "eval_splits"
        return {
            **common,
            "data.init_args.root": str(fx["eurosat"]),
            "data.init_args.train_split": str(splits / "eurosat-train.txt"),
            "data.init_args.val_split": str(splits / "eurosat-val.txt"),
            "data.init_args.test_split": str(splits / "eurosat-val.txt"),
        }
    if config.startswith("resisc45"):
        splits = fx["resisc45"].parent / "eval_splits"
        return {
            **common,
            "data.init_args.root": str(fx["resisc45"]),
            "data.init_args.train_split": str(splits / "resisc45-train.txt"),
            "data.init_args.val_split": str(splits / "resisc45-val.txt"),
            "data.init_args.test_split": str(splits / "resisc45-val.txt"),
        }
    ben = fx["bigearthnet"]
    kind = "MM" if "_mm_" in config else ("S1" if "_s1_" in config else "S2")
    return {
        **common,
        "data.init_args.s2_root": str(ben / "BigEarthNet-v1.0"),
        "data.init_args.s1_root": str(ben / "BigEarthNet-S1-v1.0"),
        "data.init_args.train_split": str(ben / "eval_splits" / f"BigEarthNet-{kind}-train.txt"),
        "data.init_args.val_split": str(ben / "eval_splits" / f"BigEarthNet-{kind}-val.txt"),
        "data.init_args.test_split": str(ben / "eval_splits" / f"BigEarthNet-{kind}-val.txt"),
    }


CONFIGS_OWNED = {
    # config: (metric that must be logged, linear probe?)
    "eurosat_finetune.yaml": ("val/Accuracy_Micro", False),
    "eurosat_linprobe.yaml": ("val/Accuracy_Micro", True),
    "bigearthnet_s2_finetune.yaml": ("val/mAP_micro", False),
    "bigearthnet_s1_linprobe.yaml": ("val/mAP_micro", True),
    "bigearthnet_mm_linprobe.yaml": ("val/mAP_micro", True),
    "bigearthnet_mm_early_linprobe.yaml": ("val/mAP_micro", True),
    "resisc45_finetune.yaml": ("val/Accuracy_Micro", False),
}


def _tiny_task(config: str, **overrides) -> SmartiesClassificationTask:
    """The task of ``config`` with the tiny backbone, built directly (no CLI)."""
    init = yaml.safe_load((CONFIGS / config).read_text())["model"]["init_args"]
    init["model_args"] = tiny_model_args(init["model_args"])
    init.update(overrides)
    return SmartiesClassificationTask(**init)


# ------------------------------------------------------------------------------------------------- configs run
@pytest.mark.parametrize("config", sorted(CONFIGS_OWNED))
def test_config_runs(config: str, fixtures: dict[str, Path], tmp_path: Path) -> None:
    metric, linprobe = CONFIGS_OWNED[config]
    cli = run_config(config, tmp_path, _data_overrides(config, fixtures))
    task = cli.model
    assert isinstance(task, SmartiesClassificationTask)
    logged = cli.trainer.callback_metrics
    assert metric in logged and torch.isfinite(logged[metric])
    assert torch.isfinite(logged["train/loss"])
    neck = next(m for m in task.model.modules() if isinstance(m, SmartiesClsToken))
    assert neck.__dict__["_norm"] is task.model.encoder.norm  # CLS after the backbone's own final norm
    if linprobe:
        assert isinstance(task.model.decoder, SmartiesLinearProbeDecoder)
        assert not any(p.requires_grad for p in task.model.encoder.parameters())
        trainable = [n for n, p in task.model.named_parameters() if p.requires_grad]
        assert trainable == ["head.head.2.weight", "head.head.2.bias"]
    else:
        assert all(p.requires_grad for p in task.model.parameters())
        groups = cli.trainer.optimizers[0].param_groups
        depth, ld = len(task.model.encoder.blocks), task.hparams["layer_decay"]
        assert ld == 1.0  # the released protocol by default; 0.75 is the option (test_layer_decay_option_in_config)
        by_layer = {g["layer_id"]: g["initial_lr"] for g in groups}
        assert sorted(by_layer) == list(range(depth + 2))
        for lid, lr in by_layer.items():  # one group per layer; with decay 1 every layer gets the base lr
            assert lr == pytest.approx(task.hparams["lr"] * ld ** (depth + 1 - lid))


@pytest.mark.parametrize("config", [c for c in sorted(CONFIGS_OWNED) if c.endswith("_finetune.yaml")])
def test_layer_decay_option_in_config(config: str) -> None:
    """The fine-tuning configs follow the released protocol (1.0) and name the stated 0.75 as the option."""
    text = (CONFIGS / config).read_text()
    assert yaml.safe_load(text)["model"]["init_args"]["layer_decay"] == 1.0
    assert "--model.init_args.layer_decay 0.75" in text


def test_cosine_warmup_is_stepped_per_iteration(fixtures: dict[str, Path], tmp_path: Path) -> None:
    overrides = _data_overrides("eurosat_finetune.yaml", fixtures)
    overrides.update(
        {
            "trainer.fast_dev_run": False,
            "trainer.max_epochs": 2,
            "trainer.limit_train_batches": 2,
            "trainer.limit_val_batches": 1,
            "trainer.check_val_every_n_epoch": 1,
            "model.init_args.scheduler_hparams": {"warmup_epochs": 1},
        }
    )
    cli = run_config("eurosat_finetune.yaml", tmp_path, overrides)
    config = cli.trainer.lr_scheduler_configs[0]
    assert config.interval == "step"
    assert config.scheduler.lr_lambdas[0].keywords == {"warmup_steps": 2, "total_steps": 4}
    assert config.scheduler.last_epoch == 4  # stepped once per optimiser step
    for group in cli.trainer.optimizers[0].param_groups:  # end of the cosine: 0, for every layer group
        assert group["lr"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("subcommand", ["validate", "test"])
def test_multilabel_evaluation_subcommands(subcommand: str, fixtures: dict[str, Path], tmp_path: Path) -> None:
    config = "bigearthnet_mm_linprobe.yaml"
    cli = run_config(config, tmp_path, _data_overrides(config, fixtures), subcommand=subcommand)
    prefix = "val" if subcommand == "validate" else "test"
    assert torch.isfinite(cli.trainer.callback_metrics[f"{prefix}/mAP_micro"])


def test_every_owned_config_is_shipped_and_commented() -> None:
    for config in CONFIGS_OWNED:
        text = (CONFIGS / config).read_text()
        cfg = yaml.safe_load(text)
        assert text.startswith("# SMARTIES"), config
        assert "smarties_terratorch.backbone." not in text  # registration is the startup hook's job, not a config line
        args = cfg["model"]["init_args"]["model_args"]
        expected = "smarties_vit_large_patch16" if config.startswith("resisc45") else "smarties_vit_base_patch16"
        assert args["backbone"] == expected


def test_mm_config_on_real_bigearthnet_patches(tmp_path: Path) -> None:
    """The late-fusion (mixup) BigEarthNet-MM config on the six real patches shipped by bigearthnet-common."""
    if importlib.util.find_spec("bigearthnet_common") is None:
        pytest.skip("bigearthnet-common is not installed")
    from smarties_terratorch.sample_data import bigearthnet_examples

    examples = bigearthnet_examples(tmp_path / "cache")
    overrides = {
        "data.init_args.s2_root": str(examples[0].s2_dir.parent),
        "data.init_args.s1_root": str(examples[0].s1_dir.parent),
        "data.init_args.train_split": None,  # deterministic hold-out: 5 train / 1 val, pairs via the S1 JSON
        "data.init_args.val_split": None,
        "data.init_args.test_split": None,
        "data.init_args.batch_size": 4,
        "data.init_args.num_workers": 0,
    }
    cli = run_config("bigearthnet_mm_linprobe.yaml", tmp_path, overrides)
    assert torch.isfinite(cli.trainer.callback_metrics["val/mAP_micro"])
    dataset = cli.datamodule.datasets["train"]
    assert len(dataset) == 5
    sample = dataset[0]
    assert sample["image"]["S2"].shape == (12, 224, 224) and sample["image"]["S1"].shape == (2, 224, 224)
    s2_dir = dataset.samples[0]["S2"]
    assert torch.equal(sample["label"], torch.from_numpy(to_bigearthnet19(read_labels(s2_dir))))


# ------------------------------------------------------------------------------------------------- linear probe
def test_linear_probe_structure_and_frozen_backbone() -> None:
    task = _tiny_task("eurosat_linprobe.yaml")
    model = task.model
    bn = model.decoder.bn
    assert isinstance(bn, nn.BatchNorm1d) and not bn.affine and bn.weight is None and bn.eps == 1e-6
    linear = model.head.head[-1]
    assert isinstance(linear, nn.Linear) and linear.in_features == 64 and linear.out_features == 10
    assert 0.004 < linear.weight.std().item() < 0.02 and torch.all(linear.bias == 0)  # trunc-normal std 0.01
    assert not any(p.requires_grad for p in model.encoder.parameters())

    x, y = torch.randn(4, 12, 64, 64), torch.tensor([0, 1, 2, 3])
    model.train()
    loss = task.criterion(model(x).output, y)
    loss.backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert linear.weight.grad is not None and linear.weight.grad.abs().sum() > 0

    # The probe's feature is the released one: final-normed CLS -> BN -> Linear.
    model.eval()
    with torch.no_grad():
        cls = model.encoder.forward_features(x, bands=EUROSAT_BANDS)[:, 0]
        expected = linear(bn(cls))
        assert torch.allclose(model(x).output, expected, atol=1e-5)


def test_cls_neck_needs_a_bound_norm() -> None:
    neck = SmartiesClsToken([64])
    tokens = torch.randn(2, 5, 64)
    with pytest.raises(RuntimeError, match="no final norm bound"):
        neck([tokens])
    assert torch.equal(SmartiesClsToken([64], final_norm=False)([tokens])[0], tokens[:, 0])
    encoder = smarties_vit_tiny_patch16(sensor="S1")
    neck.bind(encoder)
    late = torch.randn(2, 5, 128)  # two modalities concatenated: normed per 64-wide chunk
    out = neck([late])[0]
    assert torch.allclose(out, torch.cat([encoder.norm(late[:, 0, :64]), encoder.norm(late[:, 0, 64:])], -1))
    with pytest.raises(ValueError, match="SmartiesClsToken"):
        SmartiesLinearProbeDecoder([64])([tokens])


# ------------------------------------------------------------------------------------------------- optimiser
def test_layer_decay_groups_have_intended_lrs() -> None:
    task = _tiny_task("eurosat_finetune.yaml", layer_decay=0.5, lr=1.0)
    groups = task.param_groups()
    depth = 2
    lrs = {g["layer_id"]: g["lr"] for g in groups}
    assert lrs == {0: 0.125, 1: 0.25, 2: 0.5, 3: 1.0}  # embedding < block 0 < block 1 < norm/neck/head
    names = {n: g for g in groups for n in g["param_names"]}
    assert names["encoder.cls_token"]["layer_id"] == 0 and names["encoder.pos_embed"]["layer_id"] == 0
    assert names["encoder.spectrum_projection.spectrum_embeds.0.proj.weight"]["layer_id"] == 0
    assert names["encoder.blocks.1.attn.qkv.weight"]["layer_id"] == 2
    assert names["head.head.2.weight"]["layer_id"] == depth + 1
    assert names["encoder.norm.weight"]["layer_id"] == depth + 1
    # weight decay: on for >= 2-D parameters (incl. cls_token / pos_embed, as released), off for 1-D ones
    assert names["encoder.cls_token"]["weight_decay"] == 0.05
    assert names["encoder.blocks.0.attn.qkv.bias"]["weight_decay"] == 0.0
    assert names["encoder.blocks.0.norm1.weight"]["weight_decay"] == 0.0
    assert names["encoder.blocks.0.mlp.fc1.weight"]["weight_decay"] == 0.05
    assert sum(len(g["params"]) for g in groups) == sum(1 for p in task.model.parameters() if p.requires_grad)

    flat = _tiny_task("eurosat_finetune.yaml", layer_decay=1.0, lr=1.0).param_groups()
    assert {g["lr"] for g in flat} == {1.0}  # layer_decay 1.0 = the released behaviour
    with pytest.raises(ValueError, match="layer_decay"):
        _tiny_task("eurosat_finetune.yaml", layer_decay=1.5)


# The hand-written parameter groups the task used before it switched to timm's helpers, kept verbatim as the
# reference the timm-built groups must reproduce (same layers, learning rates and weight decay, parameter by parameter).
def _reference_layer_id(name: str, depth: int) -> int:
    parts = name.split(".")
    if parts[0] == "encoder":
        parts = parts[1:]
    elif parts[0] in ("decoder", "head", "neck", "aux_heads"):
        return depth + 1
    if not parts:
        return depth + 1
    if parts[0] in ("cls_token", "pos_embed", "spectrum_projection", "patch_embed"):
        return 0
    if parts[0] == "blocks" and len(parts) > 1 and parts[1].isdigit():
        return int(parts[1]) + 1
    return depth + 1


def _reference_groups(named_parameters, depth: int, lr: float, weight_decay: float, layer_decay: float) -> list[dict]:
    groups: dict = {}
    for name, param in named_parameters:
        if not param.requires_grad:
            continue
        decay = param.ndim > 1
        lid = _reference_layer_id(name, depth)
        scale = layer_decay ** (depth + 1 - lid)
        group = groups.setdefault(
            (lid, decay),
            {"params": [], "param_names": [], "lr": lr * scale, "layer_id": lid,
             "weight_decay": weight_decay if decay else 0.0},
        )  # fmt: skip
        group["params"].append(param)
        group["param_names"].append(name)
    return [groups[k] for k in sorted(groups)]


def _per_parameter(groups: list[dict]) -> dict[str, tuple[float, float, int]]:
    return {n: (g["lr"], g["weight_decay"], g["layer_id"]) for g in groups for n in g["param_names"]}


@pytest.mark.parametrize(
    ("config", "overrides"),
    [
        ("eurosat_finetune.yaml", {"layer_decay": 0.65, "lr": 3e-4}),
        ("eurosat_finetune.yaml", {"layer_decay": 1.0, "lr": 1e-3}),
        ("bigearthnet_s2_finetune.yaml", {"layer_decay": 0.75, "lr": 5e-4}),
        ("eurosat_linprobe.yaml", {}),  # frozen encoder: only the head's weight (decayed) and bias (exempt)
        ("bigearthnet_mm_linprobe.yaml", {}),
    ],
)
def test_timm_groups_equal_the_hand_written_ones(config: str, overrides: dict) -> None:
    task = _tiny_task(config, optimizer_hparams={"weight_decay": 0.05}, **overrides)
    new = task.param_groups()
    depth, hp = len(task.model.encoder.blocks), task.hparams
    old = _reference_groups(
        task.model.named_parameters(), depth, float(hp["lr"]), 0.05, float(hp.get("layer_decay", 1.0))
    )
    assert _per_parameter(new) == _per_parameter(old)
    assert [sorted(g["param_names"]) for g in new] == [sorted(g["param_names"]) for g in old]  # same grouping
    per = _per_parameter(new)
    head = [n for n in per if n.startswith("head.")]
    assert head and all(per[n][2] == depth + 1 for n in head)  # the head trains at the full lr
    assert all(per[n][1] == (0.0 if n.endswith(".bias") else 0.05) for n in head)  # head biases are exempt


def test_backbone_without_group_matcher_gets_timm_weight_decay_groups() -> None:
    class Plain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder, self.head = nn.Linear(4, 4), nn.Linear(4, 2)

    task = SmartiesClassificationTask(
        model_args={"num_classes": 2}, model_factory=None, model=Plain(), lr=0.1, optimizer_hparams={"weight_decay": 0.05}
    )
    per = {n: (g["lr"], g["weight_decay"]) for g in task.param_groups() for n in g["param_names"]}
    assert per == {"encoder.weight": (0.1, 0.05), "encoder.bias": (0.1, 0.0), "head.weight": (0.1, 0.05),
                   "head.bias": (0.1, 0.0)}  # fmt: skip
    decayed = SmartiesClassificationTask(model_args={"num_classes": 2}, model_factory=None, model=Plain(), layer_decay=0.5)
    with pytest.raises(ValueError, match="layer_decay=0.5 needs a backbone with a timm group_matcher"):
        decayed.param_groups()


def test_encoder_group_matcher_drives_timm_layer_decay() -> None:
    """The bare encoder (with a classifier head) through timm's helper: same layers as the MAE/BEiT rule."""
    from timm.optim import param_groups_layer_decay

    model = smarties_vit_tiny_patch16(num_classes=3)
    groups = param_groups_layer_decay(model, 0.05, layer_decay=0.5)
    got = {n: (g["lr_scale"], g["weight_decay"]) for g in groups for n, p in model.named_parameters()
           if any(p is q for q in g["params"])}  # fmt: skip
    old = _reference_groups(model.named_parameters(), 2, 1.0, 0.05, 0.5)
    assert got == {n: (g["lr"], g["weight_decay"]) for g in old for n in g["param_names"]}
    assert got["head.weight"] == (1.0, 0.05) and got["norm.weight"] == (1.0, 0.0)
    assert got["cls_token"] == (0.125, 0.05) and got["blocks.0.attn.qkv.weight"] == (0.25, 0.05)


def test_cosine_warmup_schedule() -> None:
    f = [cosine_warmup_factor(s, warmup_steps=10, total_steps=110) for s in (0, 5, 10, 60, 110, 200)]
    assert f == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.0, 0.0])


# ------------------------------------------------------------------------------------------------- multi-label
def test_multilabel_metric_and_loss() -> None:
    task = _tiny_task("bigearthnet_s2_finetune.yaml")
    assert task.monitor == "val/mAP_micro"
    metric = task.val_metrics["mAP_micro"].clone()
    target = torch.tensor([[1, 0, 0] + [0] * 16, [0, 1, 1] + [0] * 16])
    # micro AP pools every (sample, class) score: ranking positives 0.9, 0.4, 0.8 above negatives except one 0.5
    scores = torch.full((2, 19), 0.1)
    scores[0, 0], scores[1, 1], scores[1, 2], scores[0, 3] = 0.9, 0.4, 0.8, 0.5
    metric.update(scores, target)
    # ranks: 0.9 (P), 0.8 (P), 0.5 (N), 0.4 (P) -> AP = (1 + 1 + 3/4) / 3
    assert metric.compute().item() == pytest.approx((1 + 1 + 0.75) / 3)

    logits, y = torch.randn(3, 19), torch.randint(0, 2, (3, 19)).float()
    assert isinstance(task.criterion, LabelSmoothedMultiLabelLoss)
    bce = nn.functional.binary_cross_entropy_with_logits(logits, y)
    assert task.criterion(logits, y).item() == pytest.approx(bce.item(), rel=1e-5)
    smoothed = LabelSmoothedMultiLabelLoss(0.1)(logits, y)
    expected = nn.functional.binary_cross_entropy_with_logits(logits, y * 0.9 + 0.1 / 19)
    assert smoothed.item() == pytest.approx(expected.item(), rel=1e-5)


# ------------------------------------------------------------------------------------------------- S1 + S2 fusion
def _mm_backbone(fusion: str):
    return smarties_vit_tiny_patch16(modality_bands={"S2": S2, "S1": ["VV", "VH"]}, fusion=fusion, out_indices=[-1])


def test_fusion_output_shapes() -> None:
    x = {"S2": torch.randn(2, 12, 64, 64), "S1": torch.randn(2, 2, 64, 64)}
    shapes = {}
    for fusion in ("early", "late", "mixup"):
        backbone = _mm_backbone(fusion).eval()
        with torch.no_grad():
            out = backbone(x)
        assert len(out) == 1 and out[0].shape[-1] == backbone.out_channels[0]
        shapes[fusion] = tuple(out[0].shape)
    assert shapes == {"early": (2, 17, 64), "late": (2, 17, 128), "mixup": (2, 17, 128)}


def test_mixup_fusion_views() -> None:
    backbone = _mm_backbone("mixup")
    pos = backbone.mixup_positions(3, 196)
    assert pos.shape == (3, 196) and (pos.sum(1) == 98).all()  # 50/50 per sample
    x = {"S2": torch.randn(2, 12, 32, 32), "S1": torch.randn(2, 2, 32, 32)}
    backbone.eval()
    with torch.no_grad():
        first, again = backbone(x)[0], backbone(x)[0]
    assert torch.equal(first, again)  # seeded in eval mode
    backbone.train()
    torch.manual_seed(1)
    with torch.no_grad():
        a = backbone(x)[0]
        b = backbone(x)[0]
    assert not torch.equal(a, b)  # fresh positions in training

    # identical sources: both mixed views equal the unmixed encoding
    same = smarties_vit_tiny_patch16(modality_bands={"a": ["VV", "VH"], "b": ["VV", "VH"]}, fusion="mixup").eval()
    s1 = torch.randn(2, 2, 32, 32)
    with torch.no_grad():
        mixed = same({"a": s1, "b": s1})[-1]
        plain = same.forward_block_tokens(s1, [-1], bands=["VV", "VH"])[-1]
    assert torch.allclose(mixed, torch.cat([plain, plain], -1), atol=1e-5)

    with pytest.raises(ValueError, match="exactly two modalities"):
        smarties_vit_tiny_patch16(modality_bands={"S1": ["VV", "VH"]}, fusion="mixup")
    with pytest.raises(ValueError, match="same size"):
        backbone({"S2": torch.randn(1, 12, 32, 32), "S1": torch.randn(1, 2, 64, 64)})


# ------------------------------------------------------------------------------------------------- data modules
def test_bigearthnet_datamodule_layouts(fixtures: dict[str, Path]) -> None:
    ben = fixtures["bigearthnet"]
    s2_root, s1_root, splits = ben / "BigEarthNet-v1.0", ben / "BigEarthNet-S1-v1.0", ben / "eval_splits"
    # MM from an S2-only list: the S1 partner is found through corresponding_s2_patch
    dm = BigEarthNetDataModule(
        str(s2_root), str(s1_root), modalities=["S2", "S1"], train_split=str(splits / "BigEarthNet-S2-train.txt")
    )
    samples = dm.split_samples("train")
    assert len(samples) == 4 and all(s["S1"].parent == s1_root for s in samples)
    # pair lines in either order give the same samples
    reversed_pairs = ben / "reversed.txt"
    lines = (splits / "BigEarthNet-MM-train.txt").read_text().split("\n")
    reversed_pairs.write_text("\n".join(" ".join(ln.split()[::-1]) for ln in lines if ln))
    dm_rev = BigEarthNetDataModule(
        str(s2_root), str(s1_root), modalities=["S2", "S1"], train_split=str(reversed_pairs)
    )
    assert dm_rev.split_samples("train") == samples
    # mixed-resolution S2 bands are resampled: 20x20 B01 and 60x60 B05 become full-size channels
    dm_s2 = BigEarthNetDataModule(str(s2_root), modalities=["S2"], s2_bands=["B01", "B05", "B04"], size=120)
    dm_s2.setup("fit")
    sample = dm_s2.datasets["train"][0]
    assert sample["image"].shape == (3, 120, 120) and sample["label"].shape == (19,)
    assert torch.isfinite(sample["image"]).all()
    assert sample["image"][0].std() > 0  # B01: interpolated, not padded


def test_bigearthnet_nodata_becomes_nan_then_band_mean(fixtures: dict[str, Path], tmp_path: Path) -> None:
    # Like every other reader, the BigEarthNet one turns a pixel the file marks as nodata into NaN; the data set
    # then fills it with 0 (the band mean after normalisation), so it never reaches the model as a raw 0.
    src = next(p for p in sorted((fixtures["bigearthnet"] / "BigEarthNet-v1.0").iterdir()) if p.is_dir())
    patch = tmp_path / src.name
    shutil.copytree(src, patch)
    with rasterio.open(patch / f"{patch.name}_B04.tif", "r+") as dst:
        data = dst.read()
        data[0, 5, 7] = 0
        dst.nodata = 0
        dst.write(data)
    raw, profile = read_bigearthnet_s2(patch)
    b04 = S2_L2A_BANDS.index("B04")
    assert np.isnan(raw[b04, 5, 7]) and np.isnan(raw).sum() == 1  # that pixel of that band only
    dataset = BigEarthNetDataset([{"S2": patch}], ["S2"], {"S2": list(S2_L2A_BANDS)}, size=120)
    image = dataset[0]["image"]
    assert torch.isfinite(image).all() and image[b04, 5, 7] == 0
    assert image[b04, 5, 8] != 0 and profile["nodata"] != profile["nodata"]  # NaN: the stack's nodata


def test_eurosat_and_resisc45_datamodules(fixtures: dict[str, Path]) -> None:
    dm = EuroSATDataModule(str(fixtures["eurosat"]), bands=["B04", "B03", "B02", "B8A"], size=64)
    assert dm.num_classes == 10 and dm.classes[0] == "AnnualCrop"
    dm.setup("fit")  # no split files: stratified hold-out, one of the two files per class
    assert len(dm.datasets["train"]) == 10 and len(dm.datasets["val"]) == 10
    assert dm.datasets["train"][0]["image"].shape == (4, 64, 64)
    assert holdout_indices(10, 0.2) == {2, 7}

    res = RESISC45DataModule(str(fixtures["resisc45"]), augment=True)
    assert res.num_classes == 45
    res.setup("fit")
    assert res.datasets["train"][0]["image"].shape == (3, 224, 224)
    assert res.datasets["val"][0]["image"].shape == (3, 224, 224)
    assert random_resized_crop(torch.randn(3, 256, 200), 224).shape == (3, 224, 224)


# ------------------------------------------------------------------------------------------------- bad input
def test_band_count_mismatch_is_a_clear_error(fixtures: dict[str, Path], tmp_path: Path) -> None:
    overrides = _data_overrides("eurosat_linprobe.yaml", fixtures)
    overrides["model.init_args.model_args.backbone_bands"] = EUROSAT_BANDS[:-1]  # 11 names for 12 channels
    with pytest.raises(ValueError, match="12 channels but 11 bands"):
        run_config("eurosat_linprobe.yaml", tmp_path, overrides)


def test_class_count_mismatch_is_a_clear_error(fixtures: dict[str, Path], tmp_path: Path) -> None:
    overrides = _data_overrides("eurosat_linprobe.yaml", fixtures)
    overrides["model.init_args.model_args.num_classes"] = 7
    overrides["model.init_args.class_names"] = None
    with pytest.raises(ValueError, match="10 classes but model_args.num_classes is 7"):
        run_config("eurosat_linprobe.yaml", tmp_path, overrides)


def test_empty_or_missing_folders(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No class folder with"):
        EuroSATDataModule(str(tmp_path / "empty")).setup("fit")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        RESISC45DataModule(str(tmp_path / "missing")).setup("fit")
    with pytest.raises(FileNotFoundError, match="No BigEarthNet S2 patch folders"):
        BigEarthNetDataModule(str(tmp_path / "empty")).setup("fit")
    with pytest.raises(ValueError, match="needs s1_root"):
        BigEarthNetDataModule(str(tmp_path / "empty"), modalities=["S2", "S1"])


def test_bad_files_and_split_lines(fixtures: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "EuroSAT_MS"
    (root / "Forest").mkdir(parents=True)
    profile = dict(driver="GTiff", width=8, height=8, count=3, dtype="uint16", transform=from_origin(0, 0, 10, 10))
    with rasterio.open(root / "Forest" / "Forest_1.tif", "w", **profile) as dst:
        dst.write(np.ones((3, 8, 8), dtype=np.uint16))
    dm = EuroSATDataModule(str(root))
    with pytest.raises(ValueError, match="3 channels, but EuroSAT_MS"):
        dm.load(root / "Forest" / "Forest_1.tif", train=False)
    split = tmp_path / "split.txt"
    split.write_text("./Forest/Forest_9.tif\n")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        EuroSATDataModule(str(root), train_split=str(split)).split_samples("train")
    split.write_text("./Desert/Desert_1.tif\n")
    with pytest.raises(ValueError, match="class 'Desert'"):
        EuroSATDataModule(str(root), train_split=str(split)).split_samples("train")
    with pytest.raises(ValueError, match="B10"):
        EuroSATDataModule(str(root), bands=["B02", "B10"])
    ben = fixtures["bigearthnet"]
    split.write_text("S2A_MSIL2A_20990101T000000_1_1\n")
    with pytest.raises(FileNotFoundError, match="not found under"):
        BigEarthNetDataModule(str(ben / "BigEarthNet-v1.0"), train_split=str(split)).split_samples("train")
