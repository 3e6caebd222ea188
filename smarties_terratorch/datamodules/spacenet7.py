"""SpaceNet 7 building mapping (PANGAEA's ``SN7MAPPING``) data module for SMARTIES segmentation.

The reader and the file layout: :mod:`smarties_terratorch.datasets.spacenet7`.

Scenes are cut into non-overlapping ``tile_size`` tiles (256, PANGAEA's ``img_size``) of the ``scene_size`` grid.

Splits (``split_mode``):

- ``"domain_shift"`` (PANGAEA's default config): disjoint AOI lists, train 30 / val 15 / test 14 AOIs, the split of
  Hafner et al. 2023 (doi:10.3390/rs15215135) as listed by PANGAEA (:data:`SN7_SPLITS`; override with ``aois``).
  AOIs of a list that are missing on disk are skipped with a warning; a split with none is an error.
- ``"within_scene"``: every AOI; train = rows ``[0, i_split)``, val = rows ``[i_split, S)`` x cols ``[0, j_split)``,
  test = rows ``[i_split, S)`` x cols ``[j_split, S)`` (PANGAEA: 768 / 512).

Classes: 0 background, 1 building (PANGAEA uses one sigmoid output; here two softmax classes, same mIoU over
{background, building}). Pixels with alpha = 0 (outside the mosaic / masked) are ignored.

Normalisation: no SpaceNet7 statistics were released; the default is SMARTIES' released ``RGB`` table (8-bit RGB,
the same units as these uint8 Planet mosaics; bands R, G, B), matching the VHR RGB projections the backbone uses
(``RGB:R``, ``RGB:G``, ``RGB:B``). ``statistics: compute`` estimates dataset statistics with the same rule instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from ..datasets.spacenet7 import SPACENET7_BANDS, SpaceNet7, find_scenes, image_path, label_path
from .segmentation import SmartiesSegmentationDataModule

__all__ = ["SN7_SPLITS", "SpaceNet7DataModule"]

log = logging.getLogger(__name__)

# AOI split of Hafner et al. 2023 (doi:10.3390/rs15215135), as used by PANGAEA's SpaceNet7 configs (a list of dataset
# identifiers, i.e. data about the benchmark protocol).
SN7_SPLITS: dict[str, list[str]] = {
    "train": [
        "L15-0331E-1257N_1327_3160_13", "L15-0358E-1220N_1433_3310_13", "L15-0457E-1135N_1831_3648_13",
        "L15-0487E-1246N_1950_3207_13", "L15-0577E-1243N_2309_3217_13", "L15-0586E-1127N_2345_3680_13",
        "L15-0595E-1278N_2383_3079_13", "L15-0632E-0892N_2528_4620_13", "L15-0683E-1006N_2732_4164_13",
        "L15-0924E-1108N_3699_3757_13", "L15-1015E-1062N_4061_3941_13", "L15-1138E-1216N_4553_3325_13",
        "L15-1203E-1203N_4815_3378_13", "L15-1204E-1202N_4816_3380_13", "L15-1209E-1113N_4838_3737_13",
        "L15-1210E-1025N_4840_4088_13", "L15-1276E-1107N_5105_3761_13", "L15-1298E-1322N_5193_2903_13",
        "L15-1389E-1284N_5557_3054_13", "L15-1438E-1134N_5753_3655_13", "L15-1439E-1134N_5759_3655_13",
        "L15-1481E-1119N_5927_3715_13", "L15-1538E-1163N_6154_3539_13", "L15-1615E-1206N_6460_3366_13",
        "L15-1669E-1153N_6678_3579_13", "L15-1669E-1160N_6679_3549_13", "L15-1672E-1207N_6691_3363_13",
        "L15-1703E-1219N_6813_3313_13", "L15-1709E-1112N_6838_3742_13", "L15-1716E-1211N_6864_3345_13",
    ],
    "val": [
        "L15-0357E-1223N_1429_3296_13", "L15-0361E-1300N_1446_2989_13", "L15-0368E-1245N_1474_3210_13",
        "L15-0566E-1185N_2265_3451_13", "L15-0614E-0946N_2459_4406_13", "L15-0760E-0887N_3041_4643_13",
        "L15-1014E-1375N_4056_2688_13", "L15-1049E-1370N_4196_2710_13", "L15-1185E-0935N_4742_4450_13",
        "L15-1289E-1169N_5156_3514_13", "L15-1296E-1198N_5184_3399_13", "L15-1615E-1205N_6460_3370_13",
        "L15-1617E-1207N_6468_3360_13", "L15-1669E-1160N_6678_3548_13", "L15-1748E-1247N_6993_3202_13",
    ],
    "test": [
        "L15-0387E-1276N_1549_3087_13", "L15-0434E-1218N_1736_3318_13", "L15-0506E-1204N_2027_3374_13",
        "L15-0544E-1228N_2176_3279_13", "L15-0977E-1187N_3911_3441_13", "L15-1025E-1366N_4102_2726_13",
        "L15-1172E-1306N_4688_2967_13", "L15-1200E-0847N_4802_4803_13", "L15-1204E-1204N_4819_3372_13",
        "L15-1335E-1166N_5342_3524_13", "L15-1479E-1101N_5916_3785_13", "L15-1690E-1211N_6763_3346_13",
        "L15-1691E-1211N_6764_3347_13", "L15-1848E-0793N_7394_5018_13",
    ],
}


class SpaceNet7DataModule(SmartiesSegmentationDataModule):
    """SpaceNet 7 building mapping as PANGAEA reads it (layout and choices: module docstring).

    Args:
        root: folder with ``train/<aoi>/...`` (and ``metadata_train.json``).
        split_mode: ``"domain_shift"`` (AOI split) or ``"within_scene"``.
        aois: ``{split: [aoi ids]}`` replacing :data:`SN7_SPLITS` in ``domain_shift`` mode.
        tile_size: side of the tiles cut from each scene (PANGAEA 256).
        scene_size: side every scene is resampled to on read (PANGAEA 1024).
        i_split, j_split: ``within_scene`` boundaries.
        image_folder, label_folder: sub-folders of each AOI.
        statistics: default the released ``RGB`` table (rows R, G, B).
        other args: :class:`SmartiesSegmentationDataModule`.
    """

    dataset_name = "SpaceNet7"
    bands = SPACENET7_BANDS

    def __init__(
        self,
        root: str,
        split_mode: Literal["domain_shift", "within_scene"] = "domain_shift",
        aois: dict[str, list[str]] | None = None,
        tile_size: int = 256,
        scene_size: int = 1024,
        i_split: int = 768,
        j_split: int = 512,
        image_folder: str = "images_masked",
        label_folder: str = "labels_raster",
        statistics: str | dict[str, list[float]] = "RGB",
        stats_samples: int = 64,
        crop_size: int | None = 224,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            statistics=statistics,
            stats_samples=stats_samples,
            num_classes=2,
            crop_size=crop_size,
            **kwargs,
        )
        if split_mode not in ("domain_shift", "within_scene"):
            raise ValueError(f"split_mode must be 'domain_shift' or 'within_scene', got {split_mode!r}")
        if scene_size % tile_size:
            raise ValueError(f"scene_size {scene_size} must be a multiple of tile_size {tile_size}")
        if split_mode == "within_scene" and (i_split % tile_size or j_split % tile_size):
            raise ValueError(f"i_split {i_split} and j_split {j_split} must be multiples of tile_size {tile_size}")
        self.root = Path(root).expanduser()
        self.split_mode = split_mode
        self.aois = {k: list(v) for k, v in (aois or SN7_SPLITS).items()}
        self.tile_size = tile_size
        self.scene_size = scene_size
        self.i_split = i_split
        self.j_split = j_split
        self.image_folder = image_folder
        self.label_folder = label_folder
        self._scenes: dict[str, list[tuple[str, int, int]]] | None = None

    @property
    def output_bands(self) -> list[str]:
        return list(self.bands)

    def default_statistics_bands(self) -> list[str] | None:
        return list(self.bands) if isinstance(self.statistics, str) else None

    def image_path(self, aoi: str, year: int, month: int) -> Path:
        """The mosaic of a scene."""
        return image_path(self.root, aoi, year, month, self.image_folder)

    def label_path(self, aoi: str, year: int, month: int) -> Path:
        """The building mask of a scene."""
        return label_path(self.root, aoi, year, month, self.label_folder)

    def scenes(self) -> dict[str, list[tuple[str, int, int]]]:
        """Usable ``(aoi, year, month)`` scenes per AOI found under ``root/train`` (searched once)."""
        if self._scenes is None:
            self._scenes = find_scenes(self.root, self.image_folder, self.label_folder)
        return self._scenes

    def items(self, split: str) -> list[tuple[str, int, int, int, int]]:
        if split == "predict":
            split = "test"
        scenes = self.scenes()
        s, t = self.scene_size, self.tile_size
        if self.split_mode == "domain_shift":
            wanted = self.aois.get(split, [])
            present = [a for a in wanted if a in scenes]
            if len(present) < len(wanted):
                log.warning("SpaceNet7 %s split: %d of %d AOIs are not under %s and are skipped: %s",
                            split, len(wanted) - len(present), len(wanted), self.root / "train",
                            sorted(set(wanted) - set(present))[:5])
            if not present:
                raise FileNotFoundError(
                    f"SpaceNet7: none of the {len(wanted)} AOIs of the {split!r} split (e.g. {wanted[:2]}) are under "
                    f"{self.root / 'train'}."
                )
            rows = cols = range(0, s, t)
            return [(*sc, i, j) for a in present for sc in scenes[a] for i in rows for j in cols]
        bounds = {
            "train": ((0, self.i_split), (0, s)),
            "val": ((self.i_split, s), (0, self.j_split)),
            "test": ((self.i_split, s), (self.j_split, s)),
        }[split]
        (i0, i1), (j0, j1) = bounds
        return [
            (*sc, i, j)
            for a in sorted(scenes)
            for sc in scenes[a]
            for i in range(i0, i1, t)
            for j in range(j0, j1, t)
        ]

    def dataset(self, items: Sequence[tuple[str, int, int, int, int]], **kwargs: Any) -> SpaceNet7:
        return SpaceNet7(
            self.root,
            items,
            tile_size=self.tile_size,
            scene_size=self.scene_size,
            image_folder=self.image_folder,
            label_folder=self.label_folder,
            **kwargs,
        )
