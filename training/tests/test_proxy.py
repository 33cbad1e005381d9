"""The encoder proxy: cosine next-item retrieval on hand-made embeddings, where the right answer is known."""

import numpy as np
import pytest

from training.llm2rec.data import Dataset
from training.llm2rec.proxy import next_item_pairs, next_item_retrieval


def test_pairs_are_the_last_training_item_and_the_validation_target():
    dataset = Dataset("d", "d", ["a", "b", "c", "d"], ["A", "B", "C", "D"], [[0, 1, 2, 3], [3, 2, 1], [0, 1]])
    queries, targets = next_item_pairs(dataset)
    # user 0: train [0, 1], validation 2, test 3; user 1: train [3], validation 2; user 2 has too few items
    assert queries.tolist() == [1, 3] and targets.tolist() == [2, 2]
    with pytest.raises(ValueError, match="no validation pair"):
        next_item_pairs(Dataset("e", "e", ["a"], ["A"], [[0, 0]]))


def test_retrieval_ranks_by_cosine_and_never_returns_the_query():
    # items 0..3 on a circle: 1 is nearest to 0, then 3, then 2 (opposite); item 4 is a scaled copy of 0
    angles = np.array([0.0, 0.3, np.pi, -1.0])
    embeddings = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    embeddings = np.vstack([embeddings, 5 * embeddings[0]])  # cosine ignores the norm: 4 is 0's twin
    result = next_item_retrieval(embeddings, np.array([0, 0, 0, 0]), np.array([4, 1, 3, 2]))
    # ranks: 4 -> 0 (same direction, the query itself excluded), 1 -> 1, 3 -> 2, 2 -> 3
    expected_ndcg = np.mean([1 / np.log2(r + 2) for r in (0, 1, 2, 3)])
    assert result["recall@5"] == 1.0 and result["pairs"] == 4
    assert result["ndcg@5"] == pytest.approx(expected_ndcg)
    assert next_item_retrieval(embeddings, np.array([1]), np.array([0]))["ndcg@5"] == 1.0  # 0 and its twin tie


def test_an_informative_space_beats_a_random_one():
    rng = np.random.default_rng(0)
    clusters = rng.normal(size=(50, 16))
    items = np.repeat(clusters, 4, axis=0) + 0.1 * rng.normal(size=(200, 16))  # 4 items per cluster
    queries = np.arange(0, 200, 4)
    targets = queries + 1  # the next item is in the query's cluster
    informative = next_item_retrieval(items, queries, targets)
    random = next_item_retrieval(rng.normal(size=(200, 16)), queries, targets)
    assert informative["recall@5"] == 1.0 and random["recall@5"] < 0.3


def test_the_adapter_proxy_reads_what_cosine_misses():
    # 60 clusters of 5 items; the cluster is in 8 dimensions of small scale, 56 dimensions of loud noise drown it
    # for cosine, but a fitted linear map finds it.
    from training.llm2rec.proxy import adapter_retrieval, fit_adapter

    rng = np.random.default_rng(0)
    clusters = np.repeat(rng.normal(size=(60, 8)), 5, axis=0)
    items = np.hstack([0.3 * clusters, 3.0 * rng.normal(size=(300, 56))]).astype(np.float32)
    members = np.arange(300).reshape(60, 5)
    train = [(a, b) for group in members for a in group[:4] for b in group[:4] if a != b]
    queries, targets = members[:, 0], members[:, 4]  # held out: the fifth member of each cluster
    cosine = next_item_retrieval(items, queries, targets)
    adapter = fit_adapter(items, *map(np.array, zip(*train)), epochs=60, batch_size=256)
    learned = adapter_retrieval(adapter, items, queries, targets)
    assert learned["recall@10"] > 0.8 and cosine["recall@10"] < 0.3
