"""Fixtures every layer shares: the generated sample raster, read straight from data/.

The repository root and tests/support are on sys.path through pyproject.toml's pytest
`pythonpath`; servers are started by tests/integration/conftest.py only."""

from __future__ import annotations

from pathlib import Path

import pytest
import rasterio

from data.make_sample import FILE_NAME, write_sample

REPO_ROOT = Path(__file__).resolve().parent.parent

SAMPLE = REPO_ROOT / "data" / "generated" / FILE_NAME
LAYER = "sample_city"
TUTORIAL_LAT, TUTORIAL_LON = 45.55425883140662, -73.49350601434709


@pytest.fixture(scope="session")
def sample_path() -> Path:
    """The generated sample GeoTIFF that MapServer publishes."""
    if not SAMPLE.exists():
        write_sample(SAMPLE.parent)
    return SAMPLE


@pytest.fixture(scope="session")
def sample(sample_path):
    """The open sample dataset, read straight from data/ (not through any server)."""
    with rasterio.open(sample_path) as dataset:
        yield dataset


