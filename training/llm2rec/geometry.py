"""How spread out a source's item embeddings are: the mean pairwise cosine (1 = every item points the same way) and
the effective rank of the centred embeddings (exp of the entropy of the normalized squared singular values: how
many directions carry the variance). A diagnostic for docs/RESULTS.md: a collapsed space leaves the adapter little
to separate items with.

    python -m training.llm2rec.geometry --dataset ../shared/data/amazon-scientific --max-users 4000 \
        --source raw-backbone=backbone:quick --source llm2rec=run:runs/cpu --out reports/embedding-geometry.json
"""

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .data import first_users, load_dataset
from .item_embeddings import embed_catalogue, open_source


def geometry(embeddings: np.ndarray) -> dict:
    e = embeddings.astype(np.float64)
    unit = e / np.linalg.norm(e, axis=1, keepdims=True)
    cosines = unit @ unit.T
    n = len(e)
    singular = np.linalg.svd(e - e.mean(axis=0), compute_uv=False)
    share = singular**2 / (singular**2).sum()
    return {"mean_pairwise_cosine": float((cosines.sum() - n) / (n * (n - 1))),
            "effective_rank": float(np.exp(-(share * np.log(share + 1e-12)).sum())), "dimensions": e.shape[1]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--max-users", type=int, help="the catalogue of the first N users (as evaluate --max-users)")
    parser.add_argument("--source", action="append", required=True, metavar="NAME=SPEC")
    parser.add_argument("--sample", type=int, default=1000, help="items sampled (seed 0)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    dataset = load_dataset(args.dataset)
    if args.max_users:
        dataset = first_users(dataset, args.max_users)
    rows = np.random.default_rng(0).choice(len(dataset.titles), min(args.sample, len(dataset.titles)), replace=False)
    report = {"dataset": dataset.name, "items": len(dataset.titles), "sampled": len(rows), "sources": {},
              "command": "python -m training.llm2rec.geometry " + " ".join(argv or __import__("sys").argv[1:]),
              "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    for item in args.source:
        name, _, spec = item.partition("=")
        embeddings = embed_catalogue(open_source(spec), dataset.titles, dataset.name)
        report["sources"][name] = {"spec": spec, **geometry(embeddings[rows])}
        print(name, report["sources"][name], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
