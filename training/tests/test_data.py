import pytest

from training.llm2rec.data import DataError, first_users, leave_one_out, load_dataset, recent_items
from training.llm2rec.train_sequence import training_windows


def test_load_amazon_games(games):
    assert len(games.titles) == 16859
    assert len(games.sequences) == 50546
    assert games.interactions == 440264
    assert min(len(s) for s in games.sequences) == 5


def test_leave_one_out_on_real_data(games):
    split = leave_one_out(games.sequences)
    for sequence, train, valid, test, test_history in zip(
        games.sequences, split.train, split.valid_targets, split.test_targets, split.test_histories
    ):
        assert train == sequence[:-2]
        assert (valid, test) == (sequence[-2], sequence[-1])
        assert test_history == sequence[:-1]
    assert split.valid_histories == split.train


def test_training_never_sees_the_last_two_items():
    # Every user's last two items are unique to them and appear nowhere else: training data must not contain them.
    sequences = [list(range(100 * u, 100 * u + n)) for u, n in enumerate([3, 4, 5, 12, 13, 25, 40])]
    held_out = {i for s in sequences for i in s[-2:]}
    split = leave_one_out(sequences + [[7, 8]])  # a user with 2 items has no training part: dropped
    assert len(split.train) == len(sequences)
    assert not held_out & {i for s in split.train for i in s}
    inputs, mask, targets = training_windows(split.train, max_history=10)
    seen = set(inputs[mask == 1].tolist()) | set(targets[targets >= 0].tolist())
    assert not held_out & seen
    # every training item after a user's first is a target exactly once
    assert sorted(targets[targets >= 0].tolist()) == sorted(i for s in split.train for i in s[1:])


def test_training_windows_are_left_padded_next_item_pairs():
    inputs, mask, targets = training_windows([[1, 2, 3]], max_history=4)
    assert inputs.tolist() == [[0, 0, 1, 2]]
    assert mask.tolist() == [[0, 0, 1, 1]]
    assert targets.tolist() == [[-1, -1, 2, 3]]


def test_first_users_keeps_only_their_items(games):
    cut = first_users(games, 50)
    assert len(cut.sequences) == 50
    assert len(cut.titles) == len({i for s in games.sequences[:50] for i in s})
    for original, small in zip(games.sequences, cut.sequences):
        assert [games.item_ids[i] for i in original] == [cut.item_ids[i] for i in small]


def write_dataset(directory, interactions: str):
    """A four-item dataset in the shared layout with the given interactions.csv text."""
    directory.mkdir()
    (directory / "items.jsonl").write_text("".join(f'{{"id": "{i}", "title": "item {i}"}}\n' for i in "abcd"))
    (directory / "interactions.csv").write_text(interactions)
    return directory


def test_sequences_follow_timestamps_and_equal_ones_keep_file_order(tmp_path):
    dataset = load_dataset(write_dataset(tmp_path / "d", "user_id,item_id,timestamp\n"
                                                         "u,c,300\nv,a,5\nu,a,100\nu,d,200\nu,b,200\nv,b,1.5\n"))
    assert dataset.order == "timestamp"
    assert [[dataset.item_ids[i] for i in s] for s in dataset.sequences] == [["a", "d", "b", "c"], ["b", "a"]]


def test_without_timestamps_sequences_keep_file_order(tmp_path):
    for name, text in (("absent", "user_id,item_id\nu,c\nu,a\nu,b\n"),
                       ("empty", "user_id,item_id,timestamp\nu,c,\nu,a,\nu,b,\n")):
        dataset = load_dataset(write_dataset(tmp_path / name, text))
        assert dataset.order == "file"
        assert [dataset.item_ids[i] for i in dataset.sequences[0]] == ["c", "a", "b"]


def test_timestamps_that_are_not_all_numbers_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"line 3: timestamp '2020-01-02' is not a number"):
        load_dataset(write_dataset(tmp_path / "dates", "user_id,item_id,timestamp\nu,a,1\nu,b,2020-01-02\n"))
    with pytest.raises(ValueError, match="line 2 has a timestamp and line 3 has none"):
        load_dataset(write_dataset(tmp_path / "partial", "user_id,item_id,timestamp\nu,a,1\nu,b,\nu,c,3\n"))


def test_cuts_keep_the_order(games):
    assert games.order == "timestamp"
    assert first_users(games, 5).order == recent_items(games, 3).order == "timestamp"


def write_items(directory, text: str):
    directory.mkdir()
    (directory / "items.jsonl").write_text(text)
    return directory


@pytest.mark.parametrize("text, message", [
    ('{"id": "a", "title": "A"}\n{"id": "b", "title": \n', r"items.jsonl:2: not JSON"),
    ('["a", "A"]\n', r"items.jsonl:1: expected a JSON object"),
    ('{"title": "A"}\n', r"items.jsonl:1: id must be a non-empty string or an integer, not None"),
    ('{"id": true, "title": "A"}\n', r"items.jsonl:1: id must be"),
    ('{"id": "a", "title": null}\n', r"items.jsonl:1: title must be a string, not None"),
    ('\n\n', r"has no items"),
    ('{"id": "a", "title": "A"}\n{"id": "a", "title": "B"}\n', r"duplicate ids \(e.g. 'a'\)"),
])
def test_unusable_items_are_refused_naming_the_line(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        load_dataset(write_items(tmp_path / "d", text))


def test_integer_ids_duplicate_titles_and_a_catalogue_without_interactions_load(tmp_path):
    dataset = load_dataset(write_items(tmp_path / "d", '{"id": 7, "title": "Same"}\n{"id": "x", "title": "Same"}\n'))
    assert dataset.item_ids == ["7", "x"] and dataset.titles == ["Same", "Same"] and dataset.sequences == []


def test_unusable_interactions_are_refused(tmp_path):
    with pytest.raises(DataError, match="lacks item_id"):
        load_dataset(write_dataset(tmp_path / "header", "user,item\nu,a\n"))
    with pytest.raises(DataError, match="line 3: user_id and item_id must not be empty"):
        load_dataset(write_dataset(tmp_path / "empty", "user_id,item_id\nu,a\n,b\n"))
    with pytest.raises(DataError, match=r"line 2: item 'zz' is not in items.jsonl"):
        load_dataset(write_dataset(tmp_path / "unknown", "user_id,item_id\nu,zz\n"))
    with pytest.raises(DataError, match="no items.jsonl"):
        load_dataset(tmp_path / "nowhere")
