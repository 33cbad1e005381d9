"""Datasets in the shared layout and the leave-one-out split.

A dataset directory holds `items.jsonl` (one JSON object per line: id, title, domain, ...) and, unless it is a
catalogue only, `interactions.csv` (user_id,item_id,timestamp). A user's sequence is their rows in file order.
"""

import csv
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Dataset:
    name: str  # the directory name, e.g. "amazon-games"
    path: str  # as given by the caller (recorded in the manifest)
    item_ids: list[str]  # the dataset's own item ids, in items.jsonl order; an item's index is its position here
    titles: list[str]
    sequences: list[list[int]]  # one per user (first-appearance order), item indices in interaction order

    @property
    def interactions(self) -> int:
        return sum(len(s) for s in self.sequences)


def load_items(path: str | Path) -> tuple[list[str], list[str]]:
    """(item ids, titles) in items.jsonl order."""
    item_ids, titles = [], []
    with open(Path(path) / "items.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                item = json.loads(line)
                item_ids.append(str(item["id"]))
                titles.append(item["title"])
    return item_ids, titles


def load_dataset(path: str | Path) -> Dataset:
    directory = Path(path)
    item_ids, titles = load_items(directory)
    index = {item_id: i for i, item_id in enumerate(item_ids)}
    if len(index) != len(item_ids):
        raise ValueError(f"{directory}/items.jsonl has duplicate ids")

    by_user: dict[str, list[int]] = {}  # dicts keep insertion order: users in order of first appearance
    interactions_file = directory / "interactions.csv"
    if interactions_file.exists():
        with open(interactions_file, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if row["item_id"] not in index:
                    raise ValueError(f"{interactions_file}: item {row['item_id']!r} is not in items.jsonl")
                by_user.setdefault(row["user_id"], []).append(index[row["item_id"]])
    return Dataset(directory.name, str(path), item_ids, titles, list(by_user.values()))


def first_users(dataset: Dataset, max_users: int) -> Dataset:
    """A small cut: the first `max_users` users and only the items they interacted with (re-indexed)."""
    sequences = dataset.sequences[:max_users]
    kept = sorted({i for s in sequences for i in s})
    new_index = {old: new for new, old in enumerate(kept)}
    return Dataset(
        name=dataset.name,
        path=dataset.path,
        item_ids=[dataset.item_ids[i] for i in kept],
        titles=[dataset.titles[i] for i in kept],
        sequences=[[new_index[i] for i in s] for s in sequences],
    )


def recent_items(dataset: Dataset, max_sequence: int) -> Dataset:
    """Each user's sequence cut to its last `max_sequence` interactions (the catalogue is kept as it is)."""
    return Dataset(dataset.name, dataset.path, dataset.item_ids, dataset.titles,
                   [s[-max_sequence:] for s in dataset.sequences])


@dataclass
class Split:
    """Leave-one-out: per user, the last item is the test target, the second-to-last the validation target,
    everything before is training data. Users with fewer than 3 interactions are left out."""

    train: list[list[int]]  # the training part of each user's sequence (all but the last two items)
    valid_histories: list[list[int]]  # = train
    valid_targets: list[int]
    test_histories: list[list[int]]  # = train + the validation target
    test_targets: list[int]


def leave_one_out(sequences: list[list[int]]) -> Split:
    kept = [s for s in sequences if len(s) >= 3]
    return Split(
        train=[s[:-2] for s in kept],
        valid_histories=[s[:-2] for s in kept],
        valid_targets=[s[-2] for s in kept],
        test_histories=[s[:-1] for s in kept],
        test_targets=[s[-1] for s in kept],
    )
