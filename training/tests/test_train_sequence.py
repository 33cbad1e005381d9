import torch

from training.llm2rec import train_sequence
from training.llm2rec.data import leave_one_out
from training.llm2rec.gru4rec import GRU4Rec
from training.llm2rec.precision import resolve
from training.llm2rec.sasrec import Adapter, SASRec
from training.llm2rec.train_sequence import (EmbeddingItemTable, IdItemTable, TrainingPart, chunked_backward,
                                             dataset_groups, evaluate, left_pad, popularity, train, training_windows,
                                             window_loss)


def test_popularity_counts_only_training_items():
    # Every user trains on two of the items 5..16 and has the (otherwise unseen) items 3 and 4 as validation and
    # test targets: counted on train, 3 and 4 rank behind the 12 training items and the unseen 0, 1, 2.
    split = leave_one_out([[a, a + 1, 3, 4] for a in range(5, 17, 2)])
    metrics = popularity(split, items=20)
    assert metrics["validation"]["recall@10"] == metrics["test"]["recall@10"] == 0.0
    assert metrics["test"]["recall@20"] == 1.0  # places 15 and 16 of 20
    assert metrics["test"]["users"] == 6
    # with 3 and 4 also seen in training they would be the most popular items
    split.train = [s + [3, 4] for s in split.train]
    assert popularity(split, items=20)["validation"]["recall@10"] == 1.0


def test_sequence_models_only_look_back():
    # The hidden state at a position must not change when a later item of the history changes.
    for model in (SASRec(16, 5, 2, 2, 0.0), GRU4Rec(16, 5, dropout=0.0)):
        model.eval()
        items = torch.randn(10, 16)
        indices, mask = left_pad([[1, 2, 3, 4]], 5)
        changed = indices.clone()
        changed[0, -1] = 7
        before, after = model.encode(items[indices], mask), model.encode(items[changed], mask)
        assert torch.allclose(before[:, :-1], after[:, :-1], atol=1e-6)
        assert not torch.allclose(before[:, -1], after[:, -1])


def test_sequence_models_do_not_depend_on_how_much_left_padding_a_batch_has():
    # The trainer and the evaluation pad each batch only to its longest history: a history's user vector (and
    # hidden states at its items) must be the same under 2 or 20 positions of padding.
    generator = torch.Generator().manual_seed(3)
    items = torch.randn(30, 16, generator=generator)
    histories = [[4, 9, 2], [7], [1, 2, 3, 4, 5, 6, 7, 8]]
    for model in (SASRec(16, 20, 2, 2, 0.0), GRU4Rec(16, 20, dropout=0.0)):
        model.eval()
        with torch.no_grad():
            short, short_mask = left_pad(histories, 8)
            long, long_mask = left_pad(histories, 20)
            assert torch.allclose(model(items[short], short_mask), model(items[long], long_mask), atol=1e-5), type(model)
            hidden_short, hidden_long = model.encode(items[short], short_mask), model.encode(items[long], long_mask)
            assert torch.allclose(hidden_short[short_mask.bool()], hidden_long[long_mask.bool()], atol=1e-5)
            # and the same as each history alone, unpadded
            alone = torch.cat([model(items[torch.tensor([h])], torch.ones(1, len(h), dtype=torch.int64)) for h in histories])
            assert torch.allclose(alone, model(items[long], long_mask), atol=1e-5)


def test_a_batch_run_in_parts_of_one_length_has_the_loss_of_the_whole_padded_batch():
    generator = torch.Generator().manual_seed(5)
    sequences = [torch.randint(0, 40, (int(n),), generator=generator).tolist()
                 for n in torch.randint(2, 30, (64,), generator=generator)]
    inputs, masks, targets = training_windows(sequences, 20)
    for model in (SASRec(16, 20, 2, 2, 0.0), GRU4Rec(16, 20, dropout=0.0)):
        items = IdItemTable(40, 16)
        whole = window_loss(items, model, inputs, masks, targets)
        parted = window_loss(items, model, inputs, masks, targets, parts=8)
        assert torch.allclose(whole, parted, atol=1e-5), (type(model), whole, parted)
        whole.backward()
        grads = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        window_loss(items, model, inputs, masks, targets, parts=8).backward()
        assert all(torch.allclose(a, p.grad, atol=1e-5) for a, p in zip(grads, model.parameters()))


def test_both_sequence_models_learn_a_deterministic_pattern():
    # Every user walks the 100 items in order (from a random start, wrapping): the next item is always the current
    # one + 1. Both models must learn that from ids alone, far above popularity (near 5/100 for Recall@5).
    generator = torch.Generator().manual_seed(0)
    starts = torch.randint(0, 100, (400,), generator=generator).tolist()
    sequences = [[(s + t) % 100 for t in range(8)] for s in starts]
    split = leave_one_out(sequences)
    for kind in ("sasrec", "gru4rec"):
        torch.manual_seed(0)
        model = SASRec(32, 6, 1, 2, 0.0) if kind == "sasrec" else GRU4Rec(32, 6, dropout=0.0)
        items = IdItemTable(100, 32)
        log = train(items, model, [TrainingPart("walk", 0, 100, split)], epochs=30, batch_size=64,
                    learning_rate=1e-2, weight_decay=0.0, patience=5, quiet=True)
        with torch.no_grad():
            test = evaluate(model, items(), split.test_histories, split.test_targets)
        assert test["recall@5"] > 0.9, (kind, test, log["best_epoch"])
        assert popularity(split, 100)["test"]["recall@5"] < 0.2


def test_an_interrupted_training_continues_from_its_checkpoint_as_if_never_stopped(tmp_path):
    # Two epochs with a checkpoint, then the same training asked for four: epochs 3-4 continue from the file and
    # end where an uninterrupted four-epoch training ends (same losses, same validation, same weights).
    generator = torch.Generator().manual_seed(1)
    sequences = [torch.randint(0, 50, (9,), generator=generator).tolist() for _ in range(200)]
    parts = [TrainingPart("random", 0, 50, leave_one_out(sequences))]

    def run(epochs: int, checkpoint=None):
        torch.manual_seed(0)
        model, items = SASRec(16, 6, 1, 2, 0.3), IdItemTable(50, 16)
        log = train(items, model, parts, epochs=epochs, batch_size=32, learning_rate=1e-2, weight_decay=0.0,
                    quiet=True, checkpoint=checkpoint)
        return log, items.state_dict()["embedding.weight"]

    whole, whole_table = run(4)
    file = tmp_path / "run.checkpoint.pt"
    first, _ = run(2, file)
    assert file.exists() and [e["loss"] for e in first["epochs"]] == [e["loss"] for e in whole["epochs"][:2]]
    resumed, resumed_table = run(4, file)
    assert resumed["resumed_after_epochs"] == [2]
    assert [e["loss"] for e in resumed["epochs"]] == [e["loss"] for e in whole["epochs"]]
    assert [e["validation"] for e in resumed["epochs"]] == [e["validation"] for e in whole["epochs"]]
    assert resumed["best_epoch"] == whole["best_epoch"]
    assert torch.equal(resumed_table, whole_table)


def test_a_batch_too_large_for_its_logits_in_memory_gets_the_same_gradients_in_chunks(monkeypatch):
    # A large catalogue: the batch is backpropagated chunk by chunk (here forced by a small bound: chunks of 3
    # windows); the loss and every gradient, the item table's included, are those of the whole batch at once.
    generator = torch.Generator().manual_seed(7)
    sequences = [torch.randint(0, 60, (int(n),), generator=generator).tolist()
                 for n in torch.randint(2, 25, (40,), generator=generator)]
    inputs, masks, targets = training_windows(sequences, 10)
    monkeypatch.setattr(train_sequence, "LOGITS_IN_MEMORY", 3 * 60 * 10)
    fp32 = resolve("fp32")
    for items in (IdItemTable(60, 16), EmbeddingItemTable(torch.randn(60, 24, generator=generator), Adapter(24, 16))):
        for model in (SASRec(16, 10, 2, 2, 0.0), GRU4Rec(16, 10, dropout=0.0)):
            parameters = list(items.parameters()) + list(model.parameters())
            items.zero_grad(set_to_none=True)
            whole = window_loss(items, model, inputs, masks, targets, parts=8)
            whole.backward()
            expected = [p.grad.clone() for p in parameters]
            for p in parameters:
                p.grad = None
            chunked = chunked_backward(items, model, inputs, masks, targets, fp32)
            assert abs(chunked - whole.item()) < 1e-5, (type(items), type(model))
            assert all(torch.allclose(a, p.grad, atol=1e-6) for a, p in zip(expected, parameters)), type(model)


def test_training_over_a_catalogue_too_large_for_one_batch_of_logits_learns_as_usual(monkeypatch):
    # The same training with the memory bounds forced low (every step in chunks, users ranked a few at a time)
    # ends as the unbounded one does: the same losses and validation, epoch by epoch.
    generator = torch.Generator().manual_seed(2)
    starts = torch.randint(0, 80, (150,), generator=generator).tolist()
    parts = [TrainingPart("walk", 0, 80, leave_one_out([[(s + t) % 80 for t in range(7)] for s in starts]))]

    def run() -> dict:
        torch.manual_seed(0)
        return train(IdItemTable(80, 16), SASRec(16, 5, 1, 2, 0.0), parts, epochs=6, batch_size=32,
                     learning_rate=1e-2, weight_decay=0.0, quiet=True, precision=resolve("fp32"))

    unbounded = run()
    monkeypatch.setattr(train_sequence, "LOGITS_IN_MEMORY", 4 * 80 * 5)
    monkeypatch.setattr(train_sequence, "SCORES_IN_MEMORY", 7 * 80)
    chunked, calls = train_sequence.chunked_backward, []
    monkeypatch.setattr(train_sequence, "chunked_backward", lambda *args: calls.append(1) or chunked(*args))
    bounded = run()
    assert len(calls) == 6 * 5  # every step of every epoch (150 windows in batches of 32)
    for a, b in zip(unbounded["epochs"], bounded["epochs"]):
        assert abs(a["loss"] - b["loss"]) < 1e-4
        assert a["validation"]["walk"]["recall@10"] == b["validation"]["walk"]["recall@10"]
    assert bounded["epochs"][-1]["validation"]["walk"]["recall@5"] > 0.5  # it learned the walk


def test_windows_of_a_mixed_batch_are_scored_against_their_own_datasets_items_only():
    # Two datasets in one item table (rows 0-59 and 60-99), as the zero-shot mix trains: a window's loss is a softmax
    # over its own dataset's items, so changing the other dataset's item vectors leaves it alone, and a mixed batch's
    # loss is its datasets' losses weighted by their predicted positions.
    generator = torch.Generator().manual_seed(4)
    first = [torch.randint(0, 60, (int(n),), generator=generator).tolist() for n in torch.randint(2, 15, (20,))]
    second = [torch.randint(60, 100, (int(n),), generator=generator).tolist() for n in torch.randint(2, 15, (20,))]
    parts = [TrainingPart("first", 0, 60, None), TrainingPart("second", 60, 40, None)]
    windows = [training_windows(sequences, 8) for sequences in (first, second)]
    inputs, masks, targets = (torch.cat(tensors) for tensors in zip(*windows))
    datasets = torch.cat([torch.full((len(w[0]),), number) for number, w in enumerate(windows)])
    model, items = SASRec(16, 8, 1, 2, 0.0), IdItemTable(100, 16)

    def loss(chosen: torch.Tensor, grouped: bool = True) -> float:
        groups = dataset_groups(datasets[chosen], parts) if grouped else None
        with torch.no_grad():
            return window_loss(items, model, inputs[chosen], masks[chosen], targets[chosen], 4, groups).item()

    of_first, of_second = (datasets == 0).nonzero().flatten(), (datasets == 1).nonzero().flatten()
    before, whole_table = loss(of_first), loss(of_first, grouped=False)
    with torch.no_grad():
        items.embedding.weight[60:] = torch.randn(40, 16, generator=generator) * 3
    assert abs(loss(of_first) - before) < 1e-6  # the second dataset's items are not in the first's softmax
    assert abs(loss(of_first, grouped=False) - whole_table) > 1e-3  # they are in a softmax over the whole table
    counts = [int((targets[chosen] >= 0).sum()) for chosen in (of_first, of_second)]
    mixed = (loss(of_first) * counts[0] + loss(of_second) * counts[1]) / sum(counts)
    assert abs(loss(torch.arange(len(inputs))) - mixed) < 1e-5
