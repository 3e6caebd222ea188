"""Generate a tiny fake BigEarthNet v1.0 (S2 + S1) in the real on-disk layout (torchgeo-style test data).

Layout written under ``root``::

    BigEarthNet-v1.0/<S2 patch>/<S2 patch>_<band>.tif     12 single-band uint16 GeoTIFFs at mixed resolution:
                                                           120x120 (B02, B03, B04, B08), 60x60 (B05, B06, B07,
                                                           B8A, B11, B12), 20x20 (B01, B09), same 1200 m extent
    BigEarthNet-v1.0/<S2 patch>/<S2 patch>_labels_metadata.json    labels, coordinates, projection, tile_source,
                                                                   acquisition_date
    BigEarthNet-S1-v1.0/<S1 patch>/<S1 patch>_{VV,VH}.tif          float32 dB, 120x120
    BigEarthNet-S1-v1.0/<S1 patch>/<S1 patch>_labels_metadata.json ... + scene_source, acquisition_time,
                                                                   corresponding_s2_patch
    eval_splits/BigEarthNet-{S2,S1}-{train,val}.txt        one patch name per line
    eval_splits/BigEarthNet-MM-{train,val}.txt             "<S2 patch> <S1 patch>" per line

Labels are random picks among the 43 CORINE names (at least one kept by the 19-class nomenclature); pixel values
are random. Nothing here is real imagery. Also used by ``smarties bench run --smoke``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import from_origin

from ..io import write_text
from ._io import write_geotiff

S2_RES = {
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
    "B08": 10, "B8A": 20, "B09": 60, "B11": 20, "B12": 20,
}  # fmt: skip
KEPT = ["Non-irrigated arable land", "Pastures", "Coniferous forest", "Water bodies", "Peatbogs", "Mixed forest"]
DROPPED = ["Bare rock", "Burnt areas", "Road and rail networks and associated land"]
EXTENT = 1200  # metres


def _write(path: Path, array: np.ndarray, res: int, x0: float, y0: float) -> None:
    write_geotiff(path, array, array.dtype.name, "EPSG:32633", from_origin(x0, y0, res, res))


def make(root: str | Path, patches: int = 6, val: int = 2, seed: int = 0) -> Path:
    """Write the fixture under ``root`` and return ``root`` (S2 root, S1 root and splits are below it)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    s2_root, s1_root, splits = root / "BigEarthNet-v1.0", root / "BigEarthNet-S1-v1.0", root / "eval_splits"
    for d in (s2_root, s1_root, splits):
        d.mkdir(parents=True, exist_ok=True)
    names: list[tuple[str, str]] = []
    for k in range(patches):
        r, c = 40 + k, 50 + 2 * k
        s2 = f"S2A_MSIL2A_20170613T101031_{r}_{c}"
        s1 = f"S1A_IW_GRDH_1SDV_20170613T165043_33UUP_{r}_{c}"
        names.append((s2, s1))
        x0, y0 = 400000 + EXTENT * c, 5600000 - EXTENT * r
        labels = list(rng.choice(KEPT, size=int(rng.integers(1, 4)), replace=False))
        if rng.random() < 0.5:
            labels.append(str(rng.choice(DROPPED)))
        coords = {"ulx": x0, "uly": y0, "lrx": x0 + EXTENT, "lry": y0 - EXTENT}
        (s2_root / s2).mkdir(exist_ok=True)
        for band, res in S2_RES.items():
            side = EXTENT // res
            _write(s2_root / s2 / f"{s2}_{band}.tif", rng.integers(0, 6000, (side, side), dtype=np.uint16), res, x0, y0)
        meta = {
            "labels": labels, "coordinates": coords, "projection": CRS.from_epsg(32633).to_wkt(),
            "tile_source": "S2A_MSIL1C_20170613T101031_N0205_R022_T33UUP_20170613T101608.SAFE",
            "acquisition_date": "2017-06-13 10:10:31",
        }  # fmt: skip
        write_text(s2_root / s2 / f"{s2}_labels_metadata.json", json.dumps(meta))
        (s1_root / s1).mkdir(exist_ok=True)
        for pol, mean in (("VV", -12.0), ("VH", -19.0)):
            db = (mean + 4 * rng.standard_normal((120, 120))).astype(np.float32)
            _write(s1_root / s1 / f"{s1}_{pol}.tif", db, 10, x0, y0)
        meta1 = {
            "labels": labels, "coordinates": coords, "projection": CRS.from_epsg(32633).to_wkt(),
            "scene_source": "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017004_01C52B_5A21",
            "acquisition_time": "2017-06-13T16:50:43", "corresponding_s2_patch": s2,
        }  # fmt: skip
        write_text(s1_root / s1 / f"{s1}_labels_metadata.json", json.dumps(meta1))
    parts = {"train": names[: patches - val], "val": names[patches - val :]}
    for split, pairs in parts.items():
        write_text(splits / f"BigEarthNet-S2-{split}.txt", "".join(f"{a}\n" for a, _ in pairs))
        write_text(splits / f"BigEarthNet-S1-{split}.txt", "".join(f"{b}\n" for _, b in pairs))
        write_text(splits / f"BigEarthNet-MM-{split}.txt", "".join(f"{a} {b}\n" for a, b in pairs))
    return root
