"""Shared test fixtures. Long runs are marked ``slow`` and only run with ``--runslow``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")
    parser.addoption(
        "--native-bf16",
        choices=("detect", "yes", "no"),
        default="detect",
        help="pretend this CPU has (yes) or lacks (no) native bf16, so 'precision auto' takes the other machine "
        "kind's branch in this process (checks that no test depends on which precision auto picks)",
    )


def pytest_configure(config: pytest.Config) -> None:
    forced = config.getoption("--native-bf16")
    if forced == "detect":
        return
    # Patch torch's CPU probes (what smarties_terratorch.device asks), so tests that patch them themselves still win.
    value = forced == "yes"
    torch.cpu._is_avx512_bf16_supported = lambda: value
    torch.cpu._is_amx_tile_supported = lambda: value


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: pass --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def fast_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Downloads that write what arrives (1 KiB steps, not 1 MiB), retry at once and draw no progress bars."""
    from smarties_terratorch import fetch

    monkeypatch.setattr(fetch, "CHUNK_SIZE", 1024)
    monkeypatch.setattr(fetch, "BACKOFF", 0.0)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    return DATA / "parity"
