import csv
import json
from pathlib import Path

import pytest

from training.llm2rec.backbone import build_tiny
from training.llm2rec.cli import build_bundle
from training.llm2rec.data import Dataset, first_users, load_dataset
from training.llm2rec.presets import PRESETS
from training.llm2rec.train_config import resolve
from training.llm2rec.train_encoder import train

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
def tiny_run(tmp_path_factory, games_dir):
    """All three stages of the tiny preset on two mixed datasets, once per session: (run dir, its record)."""
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    movies = games_dir.parent / "movielens-small"
    record = train(resolve("tiny"), [str(games_dir), str(movies)], run_dir, report_dir=run_dir / "report")
    return run_dir, record


@pytest.fixture(scope="session")
def tiny_backbone():
    return build_tiny(seed=0)


def _write_cut(source: Path, users: int, out: Path) -> Path:
    """The first `users` users of a shared dataset and their items, in the shared layout."""
    dataset = first_users(load_dataset(source), users)
    out.mkdir(parents=True)
    with open(source / "items.jsonl", encoding="utf-8") as f:
        kept = set(dataset.item_ids)
        (out / "items.jsonl").write_text("".join(line for line in f if json.loads(line)["id"] in kept))
    with open(source / "interactions.csv", newline="", encoding="utf-8") as f, \
            open(out / "interactions.csv", "w", newline="", encoding="utf-8") as w:
        rows = csv.DictReader(f)
        writer = csv.DictWriter(w, fieldnames=rows.fieldnames)
        writer.writeheader()
        users_seen: list[str] = []
        for row in rows:
            if row["user_id"] not in users_seen:
                if len(users_seen) == users:
                    continue
                users_seen.append(row["user_id"])
            writer.writerow(row)
    return out


@pytest.fixture(scope="session")
def write_cut():
    """write_cut(source, users, out): the first `users` users of a shared dataset and their items, in the shared
    layout, written to `out`."""
    return _write_cut
