"""SICKLE (Cauvery delta paddy mapping, Landsat-8 incl. thermal) data module for SMARTIES segmentation.

The reader: :mod:`smarties_terratorch.datasets.sickle`.

Files: the reader's module documents the image and mask layout; this module adds the table of samples,
``<root>/sickle_dataset_tabular.csv`` (one row per sample: UNIQUE_ID, PLOT_ID, STANDARD_SEASON ("jun-sep"), YEAR,
SPLIT (train / val / test), SOWING_DAY, HARVESTING_DAY, YIELD, ...; older snapshots of the official code:
``<root>/CSVs/clean_cauvery_dataset_with_split.csv``).

Task (the crop-type task of the benchmark, paddy vs non-paddy, as the official code): class 0 = paddy, 1 = non-paddy;
pixels outside plots, and pixels of plots that belong to another split (the authors' rule), are ignored. The test
split has no public labels, so ``test`` reads ``val`` by default (``test_split``).

Acquisition: SICKLE is a time series per season; SMARTIES' SICKLE row (zero-shot Landsat-8 projections, frozen
backbone) is single-image, and the date it used is not published. Candidates are the acquisitions in the authors'
standard-season window (184 days from the first day of the season's first month) whose first band is nodata on less
than 25 % of the pixels (the authors' rule); ``acquisition`` picks ``"middle"`` (default: mid-season), ``"first"``,
``"last"`` or ``"least_nodata"``. If every candidate fails the 25 % rule, the one with the least nodata is used (its
nodata pixels are ignored). Acquisitions lacking a requested band are skipped, never zero-filled (the official code
zero-fills a missing last band).

Bands and units: Landsat-8 SR_B1..SR_B7 and ST_B10 in Collection-2 DN (0 = fill -> nodata); SMARTIES sees them as
``L8:B1 ... L8:B7, L8:B10``: B2 and B10 use the released zero-shot averaged projections (``blue_2`` and
``thermal_infrared_1``), the others the Sentinel-2 ranges of the same band. No SMARTIES statistics exist for SICKLE:
``statistics: compute`` (default) estimates them on the training split with the two-step rule. Images (about
11 x 11 px at 30 m) and masks (10 m) are both resized to ``image_size`` (bilinear / nearest).
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from ..datasets.segmentation import no_files_error
from ..datasets.sickle import SICKLE, SICKLE_BANDS, SICKLE_CLASSES, acquisition_date, image_dir, mask_path
from .segmentation import SmartiesSegmentationDataModule

__all__ = ["SICKLEDataModule"]

log = logging.getLogger(__name__)

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
CSV_NAMES = ("sickle_dataset_tabular.csv", "CSVs/clean_cauvery_dataset_with_split.csv")


class SICKLEDataModule(SmartiesSegmentationDataModule):
    """SICKLE crop-type (paddy / non-paddy) segmentation from one acquisition (layout and choices: module docstring).

    Args:
        root: dataset root.
        satellite: ``"L8"`` (default), ``"S2"`` or ``"S1"``.
        bands: npz keys to read, in order (default :data:`SICKLE_BANDS` of ``satellite``).
        mask_resolution: 3, 10 (default, as the official code) or 30 m masks.
        acquisition: ``"middle"``, ``"first"``, ``"last"`` or ``"least_nodata"``.
        csv_file: the tabular file (default: auto-detected under ``root``).
        test_split: CSV split read for ``test`` (default ``"val"``: the test labels are not public).
        nodata_value: raw value meaning "no data" (Landsat Collection-2 fill 0; S1 none -> ``None``).
        max_nodata_fraction: the authors' acquisition filter (fraction of nodata pixels in the first band).
        season_days: length of the standard-season window.
        other args: :class:`SmartiesSegmentationDataModule` (``image_size`` defaults to 224).
    """

    dataset_name = "SICKLE"

    def __init__(
        self,
        root: str,
        satellite: Literal["L8", "S2", "S1"] = "L8",
        bands: list[str] | None = None,
        mask_resolution: int = 10,
        acquisition: Literal["middle", "first", "last", "least_nodata"] = "middle",
        csv_file: str | None = None,
        test_split: str = "val",
        nodata_value: float | None = 0.0,
        max_nodata_fraction: float = 0.25,
        season_days: int = 184,
        stats_samples: int = 256,
        image_size: int | None = 224,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            stats_samples=stats_samples,
            num_classes=len(SICKLE_CLASSES),
            image_size=image_size,
            **kwargs,
        )
        if satellite not in SICKLE_BANDS:
            raise ValueError(f"satellite must be one of {list(SICKLE_BANDS)}, got {satellite!r}")
        if acquisition not in ("middle", "first", "last", "least_nodata"):
            raise ValueError(f"acquisition must be middle, first, last or least_nodata, got {acquisition!r}")
        self.root = Path(root).expanduser()
        self.satellite = satellite
        self.bands = list(bands) if bands is not None else list(SICKLE_BANDS[satellite])
        self.mask_resolution = mask_resolution
        self.acquisition = acquisition
        self.csv_file = csv_file
        self.test_split = test_split
        self.nodata_value = nodata_value
        self.max_nodata_fraction = max_nodata_fraction
        self.season_days = season_days
        self._rows: list[dict[str, str]] | None = None

    @property
    def output_bands(self) -> list[str]:
        return list(self.bands)

    # --- layout ------------------------------------------------------------------------------------------------
    def _csv_path(self) -> Path:
        if self.csv_file is not None:
            path = Path(self.csv_file).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"SICKLE: csv_file {path} does not exist.")
            return path
        for name in CSV_NAMES:
            if (self.root / name).is_file():
                return self.root / name
        raise FileNotFoundError(f"SICKLE: none of {list(CSV_NAMES)} found under {self.root}.")

    def rows(self) -> list[dict[str, str]]:
        """The CSV rows."""
        if self._rows is None:
            path = self._csv_path()
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
            need = {"UNIQUE_ID", "PLOT_ID", "STANDARD_SEASON", "YEAR", "SPLIT"}
            missing = need - set(rows[0] if rows else {})
            if missing:
                raise ValueError(f"SICKLE: {path} lacks columns {sorted(missing)} (or has no rows).")
            self._rows = rows
        return self._rows

    def image_dir(self, uid: str) -> Path:
        """The npz folder of sample ``uid``."""
        return image_dir(self.root, self.satellite, uid)

    def mask_path(self, uid: str) -> Path:
        """The mask file of sample ``uid``."""
        return mask_path(self.root, self.mask_resolution, uid)

    def season_start(self, row: dict[str, str]) -> dt.date:
        season = row["STANDARD_SEASON"].strip().lower()
        month = MONTHS.get(season.split("-")[0][:3])
        if month is None:
            raise ValueError(f"SICKLE: sample {row['UNIQUE_ID']}: unknown STANDARD_SEASON {row['STANDARD_SEASON']!r}")
        return dt.date(int(float(row["YEAR"])), month, 1)

    def items(self, split: str) -> list[tuple[str, list[Path], frozenset[int]]]:
        """``(uid, in-season npz files sorted by date, plot ids of the split)`` per sample of ``split``."""
        csv_split = {"test": self.test_split, "predict": self.test_split}.get(split, split)
        rows = [r for r in self.rows() if r["SPLIT"].strip() == csv_split]
        if not rows:
            raise ValueError(
                f"SICKLE: no rows with SPLIT == {csv_split!r} in {self._csv_path()} "
                f"(splits present: {sorted({r['SPLIT'] for r in self.rows()})})."
            )
        plots = frozenset(int(float(r["PLOT_ID"])) for r in rows)
        items, dropped = [], []
        for row in rows:
            uid = str(row["UNIQUE_ID"]).strip()
            folder = self.image_dir(uid)
            if not self.mask_path(uid).is_file():
                raise FileNotFoundError(f"SICKLE: sample {uid} has no mask {self.mask_path(uid)}.")
            start = self.season_start(row)
            files = []
            for path in sorted(folder.glob("*.npz")):
                day = acquisition_date(path.name)
                if day is None:
                    raise ValueError(f"SICKLE: cannot read an acquisition date (YYYYMMDD) from {path}.")
                if 0 <= (day - start).days < self.season_days:
                    files.append((day, path))
            if files:
                items.append((uid, [p for _, p in sorted(files)], plots))
            else:
                dropped.append(uid)
        if dropped:
            log.warning(
                "SICKLE %s: %d of %d samples have no %s acquisition in their season window and are skipped, e.g. %s",
                split, len(dropped), len(rows), self.satellite, dropped[:5],
            )
        if not items:
            raise no_files_error(self.image_dir(str(rows[0]["UNIQUE_ID"]).strip()), "*.npz", f"SICKLE {self.satellite}")
        return items

    def dataset(self, items: Sequence[tuple[str, list[Path], frozenset[int]]], **kwargs: Any) -> SICKLE:
        return SICKLE(
            self.root,
            items,
            self.satellite,
            self.bands,
            mask_resolution=self.mask_resolution,
            acquisition=self.acquisition,
            nodata_value=self.nodata_value,
            max_nodata_fraction=self.max_nodata_fraction,
            **kwargs,
        )
