"""The kNN protocol (k 20, T 0.07, cosine), the WHU-RS19 / UC-Merced readers and the protocol checks."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from cli_utils import CONFIGS, run_config, tiny_model_args

from smarties_terratorch.datamodules.ucmerced import UCMercedDataModule
from smarties_terratorch.datamodules.whurs19 import WHURS19DataModule
from smarties_terratorch.tasks.classification import SmartiesClassificationTask
from smarties_terratorch.tasks.knn import SmartiesKNNTask, knn_scores
from smarties_terratorch.tasks.protocols import ProtocolError, check_protocol
from smarties_terratorch.testing import make_fixture


@pytest.fixture(scope="module")
def eurosat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_fixture("eurosat", tmp_path_factory.mktemp("eurosat_knn"), per_class=3)


def _eurosat_overrides(data: Path) -> dict:
    splits = data.parent / "eval_splits"
    return {
        "data.init_args.root": str(data),
        "data.init_args.train_split": str(splits / "eurosat-train.txt"),
        "data.init_args.val_split": str(splits / "eurosat-val.txt"),
        "data.init_args.test_split": str(splits / "eurosat-val.txt"),
        "data.init_args.batch_size": 4,
        "data.init_args.num_workers": 0,
        "data.init_args.size": 32,
        "trainer.fast_dev_run": False,
    }


# ------------------------------------------------------------------------------------------------- the vote
def test_knn_scores_by_hand() -> None:
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 2])
    query = torch.tensor([[2.0, 0.0]])  # cosine: 1, 0, 1/sqrt(2), -1
    scores = knn_scores(query, bank, labels, num_classes=3, k=2, temperature=0.5)
    w0, w2 = math.exp(1 / 0.5), math.exp(2**-0.5 / 0.5)  # the two nearest: bank 0 (class 0), bank 2 (class 1)
    assert scores[0].tolist() == pytest.approx([w0 / (w0 + w2), w2 / (w0 + w2), 0.0])
    # k larger than the bank: every sample votes
    everyone = knn_scores(query, bank, labels, num_classes=3, k=20, temperature=0.07)
    assert everyone.sum().item() == pytest.approx(1.0) and everyone[0, 2] > 0
    assert everyone.argmax(1).item() == 0
    # leave-one-out: bank 0 excluded -> bank 2 is the best neighbour
    loo = knn_scores(query, bank, labels, num_classes=3, k=1, exclude=torch.tensor([0]))
    assert loo[0].tolist() == [0.0, 1.0, 0.0]


def test_knn_scores_multilabel_and_bad_input() -> None:
    bank = torch.eye(3)
    multi_hot = torch.tensor([[1, 0], [1, 1], [0, 1]])
    scores = knn_scores(torch.tensor([[1.0, 1.0, 0.0]]), bank, multi_hot, num_classes=2, k=2, temperature=1.0)
    # neighbours bank 0 and 1 tie (cosine 1/sqrt(2)): class 0 voted by both, class 1 by one
    assert scores[0].tolist() == pytest.approx([1.0, 0.5])
    with pytest.raises(ValueError, match="bank labels"):
        knn_scores(torch.randn(1, 3), bank, torch.tensor([0, 1]), num_classes=2)
    with pytest.raises(ValueError, match=r"\[Q, D\]"):
        knn_scores(torch.randn(1, 4), bank, multi_hot, num_classes=2)
    with pytest.raises(ValueError, match="empty"):
        knn_scores(torch.randn(1, 3), bank[:1], multi_hot[:1], num_classes=2, exclude=torch.tensor([0]))


# ------------------------------------------------------------------------------------------------- the task
def test_knn_config_matches_a_manual_vote(eurosat: Path, tmp_path: Path) -> None:
    """`terratorch validate -c configs/eurosat_knn.yaml` logs exactly the accuracy of the hand-computed vote."""
    cli = run_config("eurosat_knn.yaml", tmp_path, _eurosat_overrides(eurosat), subcommand="validate")
    task = cli.model
    assert isinstance(task, SmartiesKNNTask)
    assert not any(p.requires_grad for p in task.parameters())
    logged = cli.trainer.callback_metrics["val/Accuracy_Micro"].item()

    dm = cli.datamodule
    train = [dm.datasets["train"][i] for i in range(len(dm.datasets["train"]))]
    val = [dm.datasets["val"][i] for i in range(len(dm.datasets["val"]))]
    assert len(train) == 20 and len(val) == 10
    with torch.no_grad():
        bank = task.features(torch.stack([s["image"] for s in train]))
        query = task.features(torch.stack([s["image"] for s in val]))
        # the feature is the CLS token after the backbone's final norm
        tokens = task.encoder.forward_features(torch.stack([s["image"] for s in val]))
    assert torch.allclose(query, tokens[:, 0], atol=1e-5)
    scores = knn_scores(query, bank, torch.stack([s["label"] for s in train]), 10, k=20, temperature=0.07)
    expected = (scores.argmax(1) == torch.stack([s["label"] for s in val])).float().mean().item()
    assert logged == pytest.approx(expected)
    assert check_protocol("knn", task) == {"k": 20, "temperature": 0.07, "encoder_frozen": True}


def test_knn_leave_one_out_multilabel(tmp_path: Path) -> None:
    ben = make_fixture("bigearthnet", tmp_path / "ben")
    all_patches = tmp_path / "all.txt"
    all_patches.write_text("".join(p.name + "\n" for p in sorted((ben / "BigEarthNet-v1.0").iterdir())))
    overrides = {
        "data.init_args.s2_root": str(ben / "BigEarthNet-v1.0"),
        "data.init_args.train_split": str(all_patches),
        "data.init_args.val_split": str(all_patches),
        "data.init_args.test_split": str(all_patches),
        "data.init_args.batch_size": 4,
        "data.init_args.num_workers": 0,
        "data.init_args.size": 32,
        "model.init_args.leave_one_out": True,
        "trainer.fast_dev_run": False,
    }
    cli = run_config("bigearthnet_s2_knn.yaml", tmp_path, overrides, subcommand="validate")
    task = cli.model
    logged = cli.trainer.callback_metrics["val/mAP_micro"].item()
    samples = [cli.datamodule.datasets["val"][i] for i in range(6)]
    with torch.no_grad():
        feats = task.features(torch.stack([s["image"] for s in samples]))
    labels = torch.stack([s["label"] for s in samples])
    scores = knn_scores(feats, feats, labels, 19, exclude=torch.arange(6))  # never its own label
    metric = task.val_metrics["mAP_micro"].clone()
    metric.reset()
    metric.update(scores, labels.long())
    assert logged == pytest.approx(metric.compute().item(), abs=1e-6)


def test_knn_task_bad_input() -> None:
    args = {"backbone": "smarties_vit_tiny_patch16", "backbone_bands": ["VV", "VH"], "num_classes": 3}
    with pytest.raises(ValueError, match="only backbone_"):
        SmartiesKNNTask({**args, "decoder": "UperNetDecoder"})
    with pytest.raises(ValueError, match="num_classes"):
        SmartiesKNNTask({k: v for k, v in args.items() if k != "num_classes"})
    with pytest.raises(ValueError, match="temperature"):
        SmartiesKNNTask(args, temperature=0.0)
    with pytest.raises(RuntimeError, match="run `validate`"):
        SmartiesKNNTask(args).training_step({}, 0)


# ------------------------------------------------------------------------------------------------- protocol checks
def _task(config: str, **overrides) -> SmartiesClassificationTask:
    init = yaml.safe_load((CONFIGS / config).read_text())["model"]["init_args"]
    init["model_args"] = tiny_model_args(init["model_args"])
    init.update(overrides)
    return SmartiesClassificationTask(**init)


def test_check_protocol_catches_mislabelled_configs() -> None:
    probe = _task("eurosat_linprobe.yaml")
    facts = check_protocol("linear_probe", probe)
    assert facts["encoder_trainable_params"] == 0 and facts["head_trainable_params"] == 64 * 10 + 10
    with pytest.raises(ProtocolError, match="trainable parameters"):
        check_protocol("linear_probe", _task("eurosat_linprobe.yaml", freeze_backbone=False))
    with pytest.raises(ProtocolError, match="frozen"):
        check_protocol("finetune", probe)
    with pytest.raises(ProtocolError, match="non-linearity"):
        check_protocol("nonlinear_probe", probe)
    with pytest.raises(ProtocolError, match="SmartiesKNNTask"):
        check_protocol("knn", probe)
    with pytest.raises(ValueError, match="Unknown protocol"):
        check_protocol("zero_shot", probe)


def test_check_protocol_verifies_layer_decay_in_the_optimiser() -> None:
    task = _task("eurosat_finetune.yaml", layer_decay=0.5, lr=1.0)
    groups = task.param_groups()
    optimizer = torch.optim.AdamW([{k: v for k, v in g.items() if k != "param_names"} for g in groups], lr=1.0)
    facts = check_protocol("finetune", task, [optimizer])
    assert facts["layer_lrs"] == {0: 0.125, 1: 0.25, 2: 0.5, 3: 1.0}
    optimizer.param_groups[0]["lr"] = 1.0  # layer decay not applied to the embedding group
    with pytest.raises(ProtocolError, match="layer decay says"):
        check_protocol("finetune", task, [optimizer])


# ------------------------------------------------------------------------------------------------- readers
def test_whurs19_and_ucmerced_readers(tmp_path: Path) -> None:
    whu = make_fixture("whurs19", tmp_path / "whu", size=120)
    dm = WHURS19DataModule(str(whu), train_split=str(whu.parent / "eval_splits" / "whurs19-train.txt"), size=56)
    assert dm.num_classes == 19 and dm.classes[0] == "Airport"
    train = dm.build_dataset("train")
    sample = train[0]
    assert len(train) == 19 and sample["image"].shape == (3, 56, 56) and torch.isfinite(sample["image"]).all()
    ucm = make_fixture("ucmerced", tmp_path / "ucm")
    dm = UCMercedDataModule(str(ucm), size=224, resize_size=256)
    assert dm.num_classes == 21
    assert dm.build_dataset("val")[0]["image"].shape == (3, 224, 224)
    with pytest.raises(ValueError, match="resize_size"):
        UCMercedDataModule(str(ucm), size=224, resize_size=200)
    with pytest.raises(FileNotFoundError, match="WHU-RS19 root"):
        WHURS19DataModule(str(tmp_path / "missing")).build_dataset("train")
