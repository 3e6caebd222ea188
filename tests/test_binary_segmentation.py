"""SpaceNet7 as PANGAEA scores it: one sigmoid channel, PANGAEA's Dice loss, the one-class mIoU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from smarties_terratorch.tasks.binary import PangaeaDiceLoss, SigmoidSegmentationTask

CONFIGS = Path(__file__).parents[1] / "smarties_terratorch" / "configs"


def _task(loss: str = "dice") -> SigmoidSegmentationTask:
    import smarties_terratorch.backbone  # noqa: F401

    return SigmoidSegmentationTask(
        model_factory="EncoderDecoderFactory",
        model_args={
            "backbone": "smarties_vit_tiny_patch16",
            "backbone_bands": ["RGB:R", "RGB:G", "RGB:B"],
            "backbone_depth": 2,
            "necks": [{"name": "ReshapeTokensToImage"}],
            "decoder": "FCNDecoder",
            "decoder_channels": 8,
            "num_classes": 1,
        },
        loss=loss,
        ignore_index=-1,
        freeze_backbone=True,
    )


def pangaea_miou(z: torch.Tensor, target: torch.Tensor, ignore_index: int = -1) -> float:
    """PANGAEA's evaluator for a one-channel output: sigmoid(z) > 0.5, a 2 x 2 confusion matrix, mean IoU."""
    pred = (torch.sigmoid(z) > 0.5).long().squeeze(1)
    keep = target != ignore_index
    cm = torch.bincount(pred[keep] * 2 + target[keep], minlength=4).view(2, 2).double()
    inter = cm.diag()
    union = cm.sum(0) + cm.sum(1) - inter
    return (inter / (union + 1e-6)).mean().item()


def test_one_output_channel_and_pangaea_miou() -> None:
    torch.manual_seed(0)
    task = _task()
    x = torch.randn(3, 3, 32, 32)
    raw = task.model(x).output
    assert raw.shape == (3, 32, 32)  # the head has ONE channel (TerraTorch squeezes it away)
    raw = raw[:, None]
    out = task(x).output
    assert torch.equal(out[:, 0], torch.zeros_like(out[:, 0])) and torch.equal(out[:, 1:], raw)
    # the task's mIoU on [0, z] is PANGAEA's one-class mIoU
    z = torch.randn(4, 1, 16, 16)
    target = torch.randint(0, 2, (4, 16, 16))
    target[:, :3] = -1
    metrics = task.val_metrics
    metrics.update(torch.cat([torch.zeros_like(z), z], 1).argmax(1), target)
    got = float(metrics.compute()["val/mIoU"])
    assert got == pytest.approx(pangaea_miou(z, target), abs=1e-5)


def test_pangaea_dice_loss_values() -> None:
    loss = PangaeaDiceLoss(ignore_index=-1)
    # z -> +inf / -inf: p equals the mask -> dice 1 -> loss 0
    target = torch.tensor([[[1, 0], [0, 1]]])
    z = (target.float() * 2 - 1)[:, None] * 50
    assert loss(z, target).item() == pytest.approx(0.0, abs=1e-6)
    # p = 0.5 everywhere, 2 buildings among 4 pixels: dice = 2 * 1 / (2 + 2) = 0.5
    assert loss(torch.zeros(1, 1, 2, 2), target).item() == pytest.approx(0.5, abs=1e-6)
    # ignored pixels leave the target (as background) but not p: PANGAEA's behaviour
    ignored = torch.tensor([[[1, -1], [0, 1]]])
    assert loss(torch.zeros(1, 1, 2, 2), ignored).item() == pytest.approx(1 - 2 * 1 / (2 + 2), abs=1e-6)
    # an image without any labelled pixel is left out of the mean
    both = torch.cat([target, torch.full_like(target, -1)])
    assert loss(torch.zeros(2, 1, 2, 2), both).item() == pytest.approx(0.5, abs=1e-6)
    # two channels [0, z] give the one-channel value
    z = torch.randn(2, 1, 5, 5)
    t = torch.randint(-1, 2, (2, 5, 5))
    assert loss(torch.cat([torch.zeros_like(z), z], 1), t).item() == pytest.approx(loss(z, t).item(), abs=1e-6)


def test_ce_on_zero_background_is_binary_cross_entropy() -> None:
    task = _task(loss="ce")
    z = torch.randn(2, 1, 4, 4)
    t = torch.randint(0, 2, (2, 4, 4))
    ce = task.criterion(torch.cat([torch.zeros_like(z), z], 1), t)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(z[:, 0], t.float())
    assert ce.item() == pytest.approx(bce.item(), abs=1e-6)


def test_needs_one_class() -> None:
    with pytest.raises(ValueError, match="num_classes must be 1"):
        SigmoidSegmentationTask(model_factory="EncoderDecoderFactory", model_args={"num_classes": 2})


def test_spacenet7_config_is_one_class() -> None:
    init = yaml.safe_load((CONFIGS / "spacenet7.yaml").read_text())["model"]
    assert init["class_path"] == "smarties_terratorch.tasks.binary.SigmoidSegmentationTask"
    assert init["init_args"]["model_args"]["num_classes"] == 1
    assert init["init_args"]["loss"] == "dice"
