"""The released linear-probe head on dense tokens (``SmartiesSegmentationTask(feature_norm=True)``) and the
cross-modal retrieval metric."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from smarties_terratorch.tasks.protocols import ProtocolError, check_protocol
from smarties_terratorch.tasks.retrieval import cross_modal_retrieval
from smarties_terratorch.tasks.segmentation import FeatureNormDecoder, SmartiesSegmentationTask

pytest.importorskip("terratorch")
import smarties_terratorch.backbone  # noqa: E402,F401  (registers the backbones)

NUM_CLASSES = 7
BANDS = ["L7:B1", "L7:B2", "L7:B3", "L7:B4", "L7:B5", "L7:B7"]


def _task(**kwargs: object) -> SmartiesSegmentationTask:
    torch.manual_seed(0)
    return SmartiesSegmentationTask(
        model_factory="EncoderDecoderFactory",
        model_args={
            "backbone": "smarties_vit_tiny_patch16",
            "backbone_bands": BANDS,
            "necks": [{"name": "SelectIndices", "indices": [-1]}, {"name": "ReshapeTokensToImage"}],
            "decoder": "IdentityDecoder",
            "num_classes": NUM_CLASSES,
        },
        loss="ce",
        freeze_backbone=True,
        **kwargs,
    )


def test_feature_norm_head_shape_and_no_affine() -> None:
    task = _task(feature_norm=True)
    decoder = task.model.decoder
    assert isinstance(decoder, FeatureNormDecoder)
    assert isinstance(decoder.norm, nn.BatchNorm2d) and not decoder.norm.affine
    assert decoder.norm.eps == 1e-6
    assert not list(decoder.parameters())  # the normalisation adds nothing trainable
    # only the 1x1 convolution trains
    trainable = [n for n, p in task.model.named_parameters() if p.requires_grad]
    assert trainable == ["head.head.2.weight", "head.head.2.bias"]
    x = torch.randn(2, len(BANDS), 64, 64)
    task.train()
    out = task.model(x).output
    assert out.shape == (2, NUM_CLASSES, 64, 64)
    # the probe's input is standardised per channel over batch and token positions
    tokens = decoder(task.model.neck(task.model.encoder(x), image_size=(64, 64)))
    assert tokens.shape == (2, task.model.encoder.embed_dim, 4, 4)
    assert tokens.mean((0, 2, 3)).abs().max() < 1e-4
    assert (tokens.var((0, 2, 3), unbiased=False) - 1).abs().max() < 1e-3
    assert task.hparams["feature_norm"] is True
    assert check_protocol("linear_probe", task)["decoder"] == "FeatureNormDecoder"


def test_default_is_terratorch_task_unchanged() -> None:
    from terratorch.tasks import SemanticSegmentationTask

    ours = _task()
    torch.manual_seed(0)
    theirs = SemanticSegmentationTask(
        model_factory="EncoderDecoderFactory",
        model_args=dict(ours.hparams["model_args"]),
        loss="ce",
        freeze_backbone=True,
    )
    assert type(ours.model.decoder).__name__ == "IdentityDecoder"
    assert ours.hparams["feature_norm"] is False
    assert not any(isinstance(m, nn.BatchNorm2d) for m in ours.model.modules())
    mine, ref = ours.model.state_dict(), theirs.model.state_dict()
    assert mine.keys() == ref.keys()
    assert all(torch.equal(mine[k], ref[k]) for k in mine)  # same construction, same random draws
    x = torch.randn(2, len(BANDS), 64, 64)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        assert torch.equal(ours.model(x).output, theirs.model(x).output)


def test_linear_probe_refuses_affine_normalisation() -> None:
    task = _task(feature_norm=True)
    task.model.decoder.norm = nn.BatchNorm2d(task.model.decoder.out_channels, affine=True)
    with pytest.raises(ProtocolError, match="affine"):
        check_protocol("linear_probe", task)


def test_feature_norm_decoder_needs_out_channels() -> None:
    with pytest.raises(ValueError, match="out_channels"):
        FeatureNormDecoder(nn.Identity())


def test_retrieval_known_answers() -> None:
    torch.manual_seed(0)
    a = torch.randn(5, 8)
    perfect = cross_modal_retrieval(a, 2 * a + 0.01 * torch.randn(5, 8))
    assert perfect == {"chance": 0.2, "n": 5, "first_to_second": 1.0, "second_to_first": 1.0}
    # second side shifted by one: every query's nearest candidate is the wrong item
    assert cross_modal_retrieval(a, a.roll(1, dims=0))["first_to_second"] == 0.0
    # a hand-made case where the two directions differ (no centring, so the cosines can be checked by hand)
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    b = torch.tensor([[1.0, 0.5], [1.0, 0.2], [-1.0, 0.0]])
    res = cross_modal_retrieval(a, b, center=False)
    assert res["first_to_second"] == pytest.approx(1 / 3)  # a0 -> b1 (0.98 > 0.89), a1 -> b0, a2 -> b2 (right)
    assert res["second_to_first"] == pytest.approx(2 / 3)  # b0 -> a0 (right), b1 -> a0, b2 -> a2 (right)


def test_retrieval_centering_removes_a_shared_offset() -> None:
    torch.manual_seed(1)
    a = torch.randn(6, 4)
    b = a + 100.0  # one direction shared by every item swamps the cosine unless each side is centred
    assert cross_modal_retrieval(a, b)["first_to_second"] == 1.0
    assert cross_modal_retrieval(a, b, center=False)["first_to_second"] < 1.0


def test_retrieval_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="same N"):
        cross_modal_retrieval(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="same N"):
        cross_modal_retrieval(torch.randn(1, 3), torch.randn(1, 3))


def test_retrieval_top_k() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    b = torch.tensor([[1.0, 0.5], [1.0, 0.2], [-1.0, 0.0]])
    res = cross_modal_retrieval(a, b, center=False, top_k=2)
    assert res["chance"] == pytest.approx(2 / 3)
    # every partner is among the two nearest (a1's partner b1 ranks second, b1's partner a1 too)
    assert res["first_to_second"] == res["second_to_first"] == 1.0
    with pytest.raises(ValueError, match="top_k"):
        cross_modal_retrieval(a, b, top_k=4)
