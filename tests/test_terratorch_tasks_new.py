"""TerraTorch's newer inference and embedding features with the SMARTIES backbone.

- ``EmbeddingGenerationTask`` (TerraTorch 1.2.11 and later): per-file embedding GeoTIFFs of SMARTIES tokens.
- ``EmbeddingClassificationTask`` (1.2.13): a scikit-learn classifier on frozen SMARTIES features.
- ``tiled_inference(..., source=, sink=)`` (1.2.13) with :mod:`smarties_terratorch.io.tiles`: chips read from a
  GeoTIFF, blended predictions written to one.

Tests of 1.2.13 features skip with the reason on older TerraTorch (Python 3.11 installs 1.2.11).
"""

from __future__ import annotations

import inspect
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from lightning.pytorch import Trainer
from rasterio.transform import from_origin
from torch.utils.data import DataLoader, Dataset

import smarties_terratorch.backbone  # noqa: F401 - registers the backbones
from smarties_terratorch.io import RasterReader
from smarties_terratorch.io.tiles import GeoTiffTileSink, RasterTileSource

BANDS = ["B02", "B03", "B04", "B08"]
TERRATORCH = version("terratorch")


def _needs(available: bool, feature: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not available, reason=f"TerraTorch {TERRATORCH} has no {feature} (added in 1.2.13)")


def _has_tile_io() -> bool:
    from terratorch.tasks.tiled_inference import tiled_inference

    return "source" in inspect.signature(tiled_inference).parameters


def _has_embedding_classification() -> bool:
    import terratorch.tasks

    return hasattr(terratorch.tasks, "EmbeddingClassificationTask")


class _Images(Dataset):
    """``n`` random 4-band 32 x 32 images; label ``i % 2`` (one-hot over two classes) shows in the first band.

    Square: TerraTorch's embedding models call ``ReshapeTokensToImage`` without the image size, so it can only
    infer square token grids.
    """

    def __init__(self, n: int) -> None:
        gen = torch.Generator().manual_seed(0)
        self.images = torch.randn(n, len(BANDS), 32, 32, generator=gen)
        self.labels = torch.arange(n) % 2
        self.images[:, 0] += 3 * self.labels[:, None, None].float()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        onehot = torch.nn.functional.one_hot(self.labels[i], 2).float()
        return {"image": self.images[i], "label": onehot, "filename": f"img_{i}.tif"}


def _trainer(tmp_path: Path) -> Trainer:
    return Trainer(
        accelerator="cpu", devices=1, max_epochs=1, logger=False, enable_progress_bar=False,
        enable_checkpointing=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip


# --------------------------------------------------------------------------------------- embedding generation
def test_embedding_generation_task_writes_smarties_patch_embeddings(tmp_path: Path) -> None:
    from terratorch.tasks import EmbeddingGenerationTask

    # has_cls: SMARTIES tokens start with CLS, which must be dropped before the tokens become a 2 x 2 image
    task = EmbeddingGenerationTask(
        model_args={"backbone": "smarties_vit_tiny_patch16", "backbone_bands": BANDS},
        output_dir=str(tmp_path / "emb"), output_format="tiff", has_cls=True, layers=[-1], num_workers=1,
    )  # fmt: skip
    data = _Images(2)
    _trainer(tmp_path).predict(task, dataloaders=DataLoader(data, batch_size=2))
    with torch.no_grad():
        tokens = task.model.encoder(data.images)[-1]
    expected = tokens[:, 1:].transpose(1, 2).reshape(2, -1, 2, 2).numpy()
    for i in range(2):
        with rasterio.open(tmp_path / "emb" / "layer_00" / f"img_{i}_embedding.tif") as src:
            np.testing.assert_allclose(src.read(), expected[i], atol=1e-5)


# ----------------------------------------------------------------------------------- embedding classification
@_needs(_has_embedding_classification(), "EmbeddingClassificationTask")
def test_embedding_classification_task_fits_a_sklearn_head_on_smarties_features(tmp_path: Path) -> None:
    from terratorch.tasks import EmbeddingClassificationTask

    task = EmbeddingClassificationTask(
        model_args={
            "backbone": "smarties_vit_tiny_patch16", "backbone_bands": BANDS,
            "necks": [{"name": "AggregateTokens", "pooling": "cls"}],
            "decoder": "SklearnDecoder", "decoder_estimator_class": "sklearn.neighbors.KNeighborsClassifier",
            "decoder_n_neighbors": 1, "decoder_num_classes": 2, "num_classes": 2,
        },
    )  # fmt: skip
    data = _Images(8)
    trainer = _trainer(tmp_path)
    trainer.fit(task, train_dataloaders=DataLoader(data, batch_size=4))
    assert task.model.decoder._fitted  # noqa: SLF001 - the sklearn estimator was fit on the CLS features
    probabilities = torch.cat([p for p, _ in trainer.predict(task, dataloaders=DataLoader(data, batch_size=4))])
    # 1-nearest neighbour on its own training images: every label comes back
    assert probabilities.shape == (8, 2)
    assert torch.equal(probabilities.argmax(1), data.labels)


# --------------------------------------------------------------------------------------------- tile source/sink
def _scene(path: Path) -> Path:
    data = np.random.default_rng(3).normal(size=(len(BANDS), 80, 112)).astype(np.float32)
    profile = {"driver": "GTiff", "height": 80, "width": 112, "count": len(BANDS), "dtype": "float32",
               "crs": "EPSG:32633", "transform": from_origin(500000.0, 4600000.0, 10.0, 10.0)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def _segmentation_model() -> torch.nn.Module:
    from terratorch.models import EncoderDecoderFactory

    necks = [{"name": "SelectIndices", "indices": [0, 1]}, {"name": "ReshapeTokensToImage"}]
    model = EncoderDecoderFactory().build_model(
        "segmentation", backbone="smarties_vit_tiny_patch16", backbone_bands=BANDS, necks=necks,
        decoder="FCNDecoder", num_classes=3,
    )  # fmt: skip
    return model.eval()


TILING = {"crop": 64, "stride": 48, "delta": 8, "batch_size": 4, "padding": False}


@_needs(_has_tile_io(), "tile source/sink in tiled_inference")
def test_tiled_inference_from_and_to_geotiff_matches_in_memory(tmp_path: Path) -> None:
    from terratorch.tasks.tiled_inference import tiled_inference

    model = _segmentation_model()

    def forward(x: torch.Tensor) -> torch.Tensor:
        return model(x).output

    scene = _scene(tmp_path / "scene.tif")
    with RasterReader(scene) as reader:
        in_memory = tiled_inference(forward, torch.from_numpy(reader.read())[None], **TILING)[0].numpy()
        source = RasterTileSource(reader)
        for name, argmax in (("logits.tif", False), ("classes.tif", True)):
            sink = GeoTiffTileSink(tmp_path / name, reader, argmax=argmax)
            assert tiled_inference(forward, source.input_batch(TILING["crop"]), source=source, sink=sink, **TILING) is None
    with rasterio.open(tmp_path / "logits.tif") as logits, rasterio.open(scene) as ref:
        assert (logits.crs, logits.transform, logits.shape, logits.count) == (ref.crs, ref.transform, ref.shape, 3)
        np.testing.assert_allclose(logits.read(), in_memory, atol=1e-4)
    with rasterio.open(tmp_path / "classes.tif") as classes:
        assert classes.dtypes[0] == "uint8"
        np.testing.assert_array_equal(classes.read(1), in_memory.argmax(0))


def test_raster_tile_source_reads_windows_fills_nodata_and_transforms(tmp_path: Path) -> None:
    """The source alone (no TerraTorch needed): a chip is the scene window, NaN filled, then ``transform``."""
    from types import SimpleNamespace

    scene = _scene(tmp_path / "scene.tif")
    with rasterio.open(scene, "r+") as dst:
        dst.nodata = -9999.0
        dst.write(np.full((len(BANDS), 2, 2), -9999.0, dtype=np.float32), window=((20, 22), (30, 32)))
    with RasterReader(scene) as reader:
        source = RasterTileSource(reader, transform=lambda chip: chip * 2, fill=0.5)
        stand_in = source.input_batch(64)
        assert stand_in.shape == (1, len(BANDS), 80, 112) and stand_in.untyped_storage().nbytes() == 4
        # an inner chip: its prediction lands 8 px in, the chip itself starts at (16, 24)
        tile = SimpleNamespace(input_coords=(slice(24, 72), slice(32, 80)), output_crop=(slice(8, 56), slice(8, 56)),
                               input_data=stand_in[0, :, 16:80, 24:88])  # fmt: skip
        expected = np.nan_to_num(reader.read(16, 24, 64, 64), nan=0.5) * 2
        chip = source(tile)
    assert chip.shape == (len(BANDS), 64, 64) and chip.dtype == torch.float32
    np.testing.assert_array_equal(chip.numpy(), expected)
    assert (chip[:, 4:6, 6:8] == 1.0).all()  # the nodata pixels: fill 0.5, doubled


@_needs(_has_tile_io(), "tile source/sink in tiled_inference")
def test_raster_tile_source_rejects_padding_and_single_chip_scenes(tmp_path: Path) -> None:
    from terratorch.tasks.tiled_inference import tiled_inference

    with RasterReader(_scene(tmp_path / "scene.tif")) as reader:
        source, sink = RasterTileSource(reader), GeoTiffTileSink(tmp_path / "out.tif", reader)
        with pytest.raises(ValueError, match="padding=False"):
            tiled_inference(lambda x: x, source.input_batch(64), **{**TILING, "padding": "reflect"}, source=source,
                            sink=sink)  # fmt: skip
        with pytest.raises(ValueError, match="fits in one 128 x 128 chip"):
            source.input_batch(128)
    assert not (tmp_path / "out.tif").exists()
