"""A proxy that ranks item encoders in minutes, before any sequence model is trained.

For each user of a dataset (leave-one-out, as `evaluate`), the item the user saw last in the training part asks for
its nearest items by cosine over the encoder's title embeddings; the proxy is where the validation target lands
(Recall@10, NDCG@10 over the full catalogue, the query item itself excluded). It measures what the encoder alone
knows about "what comes next": the collaborative signal CSFT is meant to add, without an adapter or SASRec to learn
it. Beside it, the effective rank of the catalogue's embeddings (geometry.py): how many directions carry the
variance, which a collapsed space loses.

    python -m training.llm2rec.proxy --dataset ../shared/data/amazon-games --dataset ../shared/data/amazon-scientific \
        --source raw=backbone:quick --source minilm=minilm --source trial=run:runs/trials/a --out runs/proxy.json

Sources are `evaluate`'s specs (item_embeddings.py), plus `smollm2:<layers>:<causal|bidirectional>` for the raw
backbone at another depth or attention. Validation targets only: the test targets stay for `evaluate`.
"""

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from . import backbone as backbones
from .data import DataError, Dataset, leave_one_out, load_dataset
from .geometry import geometry
from .item_embeddings import EmbeddingSource, _encoder_source, embed_catalogue, open_source
from .metrics import ranking_metrics, target_ranks
from .sasrec import Adapter

GEOMETRY_SAMPLE = 2000  # items for the effective rank (an SVD of the full catalogue adds nothing but time)
ADAPTER_DIM = 128  # as the evaluation's adapter
ADAPTER_PAIRS = 100_000  # training pairs the adapter is fitted on (one epoch): about a minute on one busy core


def next_item_pairs(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(query item, validation target) per user: the last training item and the item that followed it."""
    split = leave_one_out(dataset.sequences)
    queries = [history[-1] for history in split.valid_histories if history]
    targets = [t for history, t in zip(split.valid_histories, split.valid_targets) if history]
    if not queries:
        raise DataError(f"{dataset.path}: no user has 3 or more interactions, so there is no validation pair")
    return np.array(queries), np.array(targets)


@torch.no_grad()
def retrieval(vectors: torch.Tensor, queries: np.ndarray, targets: np.ndarray, batch_size: int = 2048) -> dict:
    """Recall/NDCG@5/10/20 of the targets when each query item ranks the whole catalogue by dot product of
    `vectors` [items, dim] (itself excluded); queries/targets are item indices."""
    ranks = []
    for start in range(0, len(queries), batch_size):
        q = torch.from_numpy(queries[start : start + batch_size])
        scores = vectors[q] @ vectors.T
        scores[torch.arange(len(q)), q] = -torch.inf  # the query item is not its own next item
        ranks.append(target_ranks(scores, torch.from_numpy(targets[start : start + batch_size])))
    return {**ranking_metrics(torch.cat(ranks)), "pairs": int(len(queries))}


def next_item_retrieval(embeddings: np.ndarray, queries: np.ndarray, targets: np.ndarray) -> dict:
    """`retrieval` by cosine over the raw embeddings."""
    unit = torch.nn.functional.normalize(torch.from_numpy(np.asarray(embeddings, dtype=np.float32)), dim=-1)
    return retrieval(unit, queries, targets)


def training_pairs(dataset: Dataset, limit: int = ADAPTER_PAIRS) -> tuple[np.ndarray, np.ndarray]:
    """(item, next item) for the consecutive pairs inside each user's training part, at most `limit` of them
    (a fixed random sample)."""
    pairs = [(a, b) for history in leave_one_out(dataset.sequences).train for a, b in zip(history, history[1:])]
    if not pairs:
        raise DataError(f"{dataset.path}: no user has two training items, so there is nothing to fit an adapter on")
    pairs = np.array(pairs)
    if len(pairs) > limit:
        pairs = pairs[np.sort(np.random.default_rng(0).choice(len(pairs), limit, replace=False))]
    return pairs[:, 0], pairs[:, 1]


def fit_adapter(embeddings: np.ndarray, queries: np.ndarray, targets: np.ndarray, epochs: int = 1,
                batch_size: int = 1024, seed: int = 0) -> Adapter:
    """The evaluation's adapter (Linear to 128, LayerNorm) fitted for next-item prediction from one item, full
    softmax over the catalogue: what a learned linear map can read from the embeddings about what comes next.
    Embeddings are standardized first (per dimension), so their scale does not decide the learning rate."""
    torch.manual_seed(seed)
    table = standardize(embeddings)
    adapter = Adapter(table.shape[1], ADAPTER_DIM)
    optimizer = torch.optim.AdamW(adapter.parameters(), lr=1e-3, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    q, t = torch.from_numpy(queries), torch.from_numpy(targets)
    for _ in range(epochs):
        order = torch.randperm(len(q), generator=generator)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            vectors = adapter(table)
            logits = vectors[q[batch]] @ vectors.T * ADAPTER_DIM**-0.5
            loss = torch.nn.functional.cross_entropy(logits, t[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return adapter.eval()


def standardize(embeddings: np.ndarray) -> torch.Tensor:
    table = torch.from_numpy(np.asarray(embeddings, dtype=np.float32))
    return (table - table.mean(dim=0)) / table.std(dim=0).clamp(min=1e-6)


@torch.no_grad()
def adapter_retrieval(adapter: Adapter, embeddings: np.ndarray, queries: np.ndarray, targets: np.ndarray) -> dict:
    """`retrieval` in the adapter's space (dot product of its LayerNorm-ed vectors)."""
    return retrieval(adapter(standardize(embeddings)), queries, targets)


def open_proxy_source(spec: str) -> EmbeddingSource:
    kind, _, argument = spec.partition(":")
    if kind != "smollm2":
        return open_source(spec)
    layers, _, attention = argument.partition(":")
    backbone = backbones.load_smollm2()
    return _encoder_source(spec, backbone, int(layers), attention or "causal", 32, 64)


def score(source: EmbeddingSource, datasets: list[Dataset]) -> dict:
    """Per dataset: the cosine proxy, the effective rank, and `adapter`: the proxy through an adapter fitted on
    the dataset's own training pairs. `zero-shot`: through the adapter fitted on the first dataset (as the
    zero-shot setting trains on one domain and ranks another)."""
    result, first_adapter = {}, None
    for dataset in datasets:
        started = time.time()
        embeddings = embed_catalogue(source, dataset.titles, dataset.name)
        queries, targets = next_item_pairs(dataset)
        rows = np.random.default_rng(0).choice(len(embeddings), min(GEOMETRY_SAMPLE, len(embeddings)), replace=False)
        adapter = fit_adapter(embeddings, *training_pairs(dataset))
        first_adapter = first_adapter or adapter
        result[dataset.name] = {**next_item_retrieval(embeddings, queries, targets), **geometry(embeddings[rows]),
                                "adapter": adapter_retrieval(adapter, embeddings, queries, targets)}
        if adapter is not first_adapter:
            result[dataset.name]["zero-shot"] = adapter_retrieval(first_adapter, embeddings, queries, targets)
        result[dataset.name]["seconds"] = round(time.time() - started, 1)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", action="append", required=True)
    parser.add_argument("--source", action="append", required=True, metavar="NAME=SPEC")
    parser.add_argument("--out", type=Path, required=True, help="JSON report; sources already in it are kept")
    args = parser.parse_args(argv)
    datasets = [load_dataset(path) for path in args.dataset]
    report = json.loads(args.out.read_text()) if args.out.exists() else {"sources": {}}
    report.update({"proxy": "cosine next-item retrieval from the last training item to the validation target, "
                            "full catalogue, query excluded; effective rank of 2,000 sampled items",
                   "datasets": [d.path for d in datasets]})
    for item in args.source:
        name, _, spec = item.partition("=")
        if not spec:
            raise SystemExit(f"--source takes NAME=SPEC, not {item!r}")
        report["sources"][name] = {"spec": spec, **score(open_proxy_source(spec), datasets),
                                   "command": "python -m training.llm2rec.proxy " + " ".join(argv or sys.argv[1:]),
                                   "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        for dataset, m in report["sources"][name].items():
            if isinstance(m, dict):
                print(f"{name:>24} {dataset:<20} cosine N@10 {m['ndcg@10']:.4f}, adapter N@10 "
                      f"{m['adapter']['ndcg@10']:.4f}" + (f", zero-shot N@10 {m['zero-shot']['ndcg@10']:.4f}"
                                                          if 'zero-shot' in m else "")
                      + f", eff.rank {m['effective_rank']:.1f} ({m['seconds']}s)", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
