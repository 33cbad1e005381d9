"""Datasets in the shared layout and the leave-one-out split.

A dataset directory holds `items.jsonl` (one JSON object per line: id, title, domain, ...) and, unless it is a
catalogue only, `interactions.csv` (user_id,item_id,timestamp).

Sequence order: a user's sequence is their rows ordered by `timestamp`, a stable sort (rows with equal timestamps keep
their file order), when every row's timestamp is a finite number (integer or decimal: unix seconds, milliseconds or a
position). Without a timestamp column, or with the column empty in every row, it is the rows in file order. A column
that has a value in some rows but is empty or not a number in others is refused: there is no order to trust.

Both files are UTF-8 (a byte-order mark at the start is ignored); lines may end in LF or CRLF.

Data that cannot be used (a missing items.jsonl, a line that is not a JSON object with an id and a title, an
interaction naming an unknown item, ...) raises DataError naming the file and line; the command line prints it as
an error message, without a traceback.
"""

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path


class DataError(ValueError):
    """A dataset that cannot be used as given; the message names the file (and line) and what is wrong."""


@dataclass
class Dataset:
    name: str  # the directory name, e.g. "amazon-games"
    path: str  # as given by the caller (recorded in the manifest)
    item_ids: list[str]  # the dataset's own item ids, in items.jsonl order; an item's index is its position here
    titles: list[str]
    sequences: list[list[int]]  # one per user (first-appearance order), item indices in interaction order
    order: str = "file"  # how each sequence is ordered: "timestamp" or "file" (no timestamps); see the docstring

    @property
    def interactions(self) -> int:
        return sum(len(s) for s in self.sequences)


def load_items(path: str | Path) -> tuple[list[str], list[str]]:
    """(item ids, titles) in items.jsonl order. Ids may be strings or integers (kept as strings)."""
    file = Path(path) / "items.jsonl"
    if not file.is_file():
        raise DataError(f"{path}: no items.jsonl (a dataset directory holds items.jsonl and, optionally, "
                        f"interactions.csv)")
    item_ids, titles = [], []
    with open(file, encoding="utf-8-sig") as f:  # -sig: a byte-order mark (as some editors write) is not data
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{file}:{line_number}: not JSON ({error.msg})") from None
            if not isinstance(item, dict):
                raise DataError(f"{file}:{line_number}: expected a JSON object with an id and a title")
            item_id, title = item.get("id"), item.get("title")
            if isinstance(item_id, bool) or not isinstance(item_id, (str, int)) or str(item_id) == "":
                raise DataError(f"{file}:{line_number}: id must be a non-empty string or an integer, not {item_id!r}")
            if not isinstance(title, str):
                raise DataError(f"{file}:{line_number}: title must be a string, not {title!r}")
            item_ids.append(str(item_id))
            titles.append(title)
    if not item_ids:
        raise DataError(f"{file} has no items")
    return item_ids, titles


def parse_timestamp(value: str) -> int | float | None:
    """A timestamp cell as a number; None if it is empty or not a finite number."""
    try:
        number = int(value)  # exact, however large (float would merge nearby nanosecond timestamps)
    except ValueError:
        try:
            number = float(value)
        except ValueError:
            return None
    return number if math.isfinite(number) else None


def read_interactions(interactions_file: Path, index: dict[str, int]) -> tuple[list[list[int]], str]:
    """(sequences, order) from interactions.csv: one sequence per user, users in order of first appearance, each
    ordered as the module docstring says."""
    by_user: dict[str, list[tuple[int | float | None, int]]] = {}  # dicts keep insertion order
    timed, untimed = None, None  # the first line with a timestamp / with none (line numbers count the header)
    with open(interactions_file, newline="", encoding="utf-8-sig") as f:
        rows = csv.DictReader(f)
        missing = {"user_id", "item_id"} - set(rows.fieldnames or [])
        if missing:
            raise DataError(f"{interactions_file}: the header must name user_id,item_id[,timestamp]; "
                            f"it lacks {', '.join(sorted(missing))}")
        for line, row in enumerate(rows, start=2):
            if not row["user_id"] or not row["item_id"]:
                raise DataError(f"{interactions_file}, line {line}: user_id and item_id must not be empty")
            if row["item_id"] not in index:
                raise DataError(f"{interactions_file}, line {line}: item {row['item_id']!r} is not in items.jsonl")
            text = (row.get("timestamp") or "").strip()
            timestamp = parse_timestamp(text)
            if text and timestamp is None:
                raise DataError(f"{interactions_file}, line {line}: timestamp {text!r} is not a number; sequences "
                                 f"are ordered by timestamp, so every row needs a number (or leave the column empty "
                                 f"in every row to keep file order)")
            if timestamp is None:
                untimed = untimed or line
            else:
                timed = timed or line
            if timed and untimed:
                raise DataError(f"{interactions_file}: line {timed} has a timestamp and line {untimed} has none; "
                                 f"sequences are ordered by timestamp, so give every row one (or none, to keep file "
                                 f"order)")
            by_user.setdefault(row["user_id"], []).append((timestamp, index[row["item_id"]]))
    if timed:
        for user_rows in by_user.values():
            user_rows.sort(key=lambda r: r[0])  # a stable sort: equal timestamps keep file order
    return [[item for _, item in user_rows] for user_rows in by_user.values()], "timestamp" if timed else "file"


def load_dataset(path: str | Path) -> Dataset:
    directory = Path(path)
    item_ids, titles = load_items(directory)
    index = {item_id: i for i, item_id in enumerate(item_ids)}
    if len(index) != len(item_ids):
        duplicate = next(item_id for i, item_id in enumerate(item_ids) if index[item_id] != i)
        raise DataError(f"{directory}/items.jsonl has duplicate ids (e.g. {duplicate!r})")
    interactions_file = directory / "interactions.csv"
    sequences, order = read_interactions(interactions_file, index) if interactions_file.exists() else ([], "file")
    return Dataset(directory.name, str(path), item_ids, titles, sequences, order)


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
        order=dataset.order,
    )


def recent_items(dataset: Dataset, max_sequence: int) -> Dataset:
    """Each user's sequence cut to its last `max_sequence` interactions (the catalogue is kept as it is)."""
    return Dataset(dataset.name, dataset.path, dataset.item_ids, dataset.titles,
                   [s[-max_sequence:] for s in dataset.sequences], dataset.order)


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
