from pathlib import Path

import pytest

from training.llm2rec.backbone import build_tiny
from training.llm2rec.cli import build_bundle
from training.llm2rec.data import Dataset, load_dataset
from training.llm2rec.presets import PRESETS

GAMES = Path(__file__).resolve().parents[3] / "shared" / "data" / "amazon-games"


@pytest.fixture(scope="session")
def games_dir() -> Path:
    return GAMES


@pytest.fixture(scope="session")
def games(games_dir) -> Dataset:
    return load_dataset(games_dir)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """The tiny preset built end to end once per test session (no embedding cache)."""
    return build_bundle(PRESETS["tiny"], [str(GAMES)], tmp_path_factory.mktemp("bundles") / "tiny", use_cache=False)


@pytest.fixture(scope="session")
def tiny_backbone():
    return build_tiny(seed=0)
