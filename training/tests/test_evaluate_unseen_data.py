"""`evaluate` on datasets shaped unlike the shared ones, built here: string ids, items nobody interacted with,
duplicate and empty titles, a byte-order mark and CRLF line ends, one very long history, a two-item catalogue.
Each runs end to end through the command line with metrics that mean something; data that cannot train a
sequence model is refused with a message, not a traceback."""

import json
import math
import random

import pytest

from training.llm2rec import cli

WORDS = "red blue space quest dragon hero racing puzzle legend night star kart chess war".split()


def write(directory, items: list[dict], rows: list[tuple], *, bom: bool = False, line_end: str = "\n"):
    directory.mkdir(parents=True)
    encoding = "utf-8-sig" if bom else "utf-8"
    (directory / "items.jsonl").write_text("".join(json.dumps(item) + line_end for item in items), encoding=encoding)
    lines = ["user_id,item_id,timestamp"] + [",".join(map(str, row)) for row in rows]
    (directory / "interactions.csv").write_text(line_end.join(lines) + line_end, encoding=encoding)
    return directory


def title(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4))).title()


def odd_datasets(root) -> dict:
    rng = random.Random(0)
    shop = [{"id": f"sku-{i:03d}-é", "title": "Same Title" if i % 7 == 0 else title(rng)} for i in range(120)]
    small = [{"id": i, "title": "" if i % 9 == 0 else "   " if i % 9 == 1 else title(rng)} for i in range(40)]
    small[5]["title"] = "epic " * 3000  # far beyond any tokenizer limit
    return {
        # string ids, a third of the catalogue never interacted with, duplicate titles
        "string-ids": write(root / "string-ids", shop, [(f"user-{u}", f"sku-{rng.randrange(80):03d}-é", t)
                                                        for u in range(40) for t in range(rng.randint(1, 10))]),
        # empty, blank and huge titles; a byte-order mark and CRLF, as some editors write
        "odd-titles": write(root / "odd-titles", small, [(u, rng.randrange(40), t) for u in range(30) for t in range(6)],
                            bom=True, line_end="\r\n"),
        # one user with 3,000 interactions beside users with 4
        "long-history": write(root / "long-history", small[10:], [(0, 10 + rng.randrange(30), t) for t in range(3000)]
                              + [(u, 10 + rng.randrange(30), t) for u in range(1, 20) for t in range(4)]),
        # two items: every cutoff takes in the whole catalogue
        "two-items": write(root / "two-items", [{"id": "a", "title": "A"}, {"id": "b", "title": "B"}],
                           [(u, "ab"[t % 2], t) for u in range(10) for t in range(4)]),
    }


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    return odd_datasets(tmp_path_factory.mktemp("unseen"))


def evaluate(dataset, out, capsys) -> tuple[dict, str]:
    cli.main(["evaluate", "--in-domain", str(dataset), "--methods", "popularity", "id-sasrec", "id-gru4rec",
              "tiny-sasrec", "--source", "tiny=backbone:tiny", "--seeds", "1", "--max-epochs", "2", "--patience", "1",
              "--out", str(out), "--report", str(out / "quality.json")])
    return json.loads((out / "quality.json").read_text()), capsys.readouterr().out


@pytest.mark.parametrize("name", ["string-ids", "odd-titles", "long-history", "two-items"])
def test_evaluate_runs_on_data_it_has_never_seen(datasets, name, tmp_path, capsys):
    report, shown = evaluate(datasets[name], tmp_path, capsys)
    [entry] = report["datasets"].values()
    assert entry["test_users"] > 0
    for method, values in entry["methods"].items():
        for metric in ("recall@10", "ndcg@10", "recall@20"):
            assert 0.0 <= values[metric]["mean"] <= 1.0 and math.isfinite(values[metric]["mean"]), (method, metric)
    if name == "two-items":  # said, not silently reported as a result
        assert entry["whole_catalogue_cutoffs"] == [5, 10, 20]
        assert "Recall@k is 1 by construction" in shown
        assert "by construction" in (tmp_path / "quality.md").read_text()
    else:
        assert entry["whole_catalogue_cutoffs"] == [] and "by construction" not in shown


def test_data_with_no_next_item_pair_to_train_on_is_refused(tmp_path, capsys):
    only_three = write(tmp_path / "three-each", [{"id": 1, "title": "One"}, {"id": 2, "title": "Two"}],
                       [(u, 1 + t % 2, t) for u in range(5) for t in range(3)])
    with pytest.raises(SystemExit) as exit:
        evaluate(only_three, tmp_path / "out", capsys)
    assert exit.value.code == 1
    error = capsys.readouterr().err
    assert "no user has 4 or more interactions" in error and "Traceback" not in error
