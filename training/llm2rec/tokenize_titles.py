"""Reference token ids for the TypeScript tokenizer: every title of every given dataset, tokenized by the Python
`tokenizers` library exactly as training does (the bundle's manifest gives max_length, pad and special tokens).

    python -m training.llm2rec.tokenize_titles --tokenizer bundles/quick/tokenizer.json --out ids.json [--datasets ...]

Writes {"titles": [...], "ids": [[...], ...]} (titles in dataset order, then items.jsonl order).
"""

import argparse
import json
from pathlib import Path

from .backbone import REPO_ROOT
from .data import load_items
from .tokens import TitleTokenizer

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.llm2rec.tokenize_titles", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", type=Path, required=True,
                        help="a bundle's tokenizer.json; its settings come from the manifest.json beside it")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--datasets", nargs="+", help=f"dataset directories (default: every one in {SHARED_DATA})")
    args = parser.parse_args(argv)

    manifest = json.loads((args.tokenizer.parent / "manifest.json").read_text())
    if manifest["tokenizer"]["file"] != args.tokenizer.name:
        raise SystemExit(f"{args.tokenizer} is not the tokenizer of the manifest beside it")
    tokenizer = TitleTokenizer.from_bundle(args.tokenizer.parent, manifest)
    paths = args.datasets or sorted(str(p) for p in SHARED_DATA.iterdir() if (p / "items.jsonl").exists())
    titles = [title for path in paths for title in load_items(path)[1]]
    args.out.write_text(json.dumps({"titles": titles, "ids": tokenizer.encode(titles)}, ensure_ascii=False))
    print(f"{len(titles)} titles from {len(paths)} datasets -> {args.out}")


if __name__ == "__main__":
    main()
