from training.llm2rec.data import first_users, leave_one_out
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
