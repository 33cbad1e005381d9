"""Tuning on validation (tune.py) on a small cut of amazon-games: every configuration of the grid is trained, the
winner is the best validation Recall@20, the report is written, and `evaluate --tuned` trains with the winner."""

import json
import shutil

import pytest

from training.llm2rec import cli
from training.llm2rec import tune as tuning
from training.llm2rec.config import ConfigError
from training.llm2rec.evaluate import Evaluation, Harness, Protocol
from training.llm2rec.tune import (bracketing, configurations, edge_note, next_step, parse_grid, record,
                                   tuned_settings)
from training.llm2rec.train_sequence import TRAINING_PROCEDURE


@pytest.fixture(scope="module")
def games_cut(tmp_path_factory, games_dir, write_cut):
    return write_cut(games_dir, 60, tmp_path_factory.mktemp("data") / "amazon-games")


@pytest.fixture(scope="module")
def tuned(games_cut, tmp_path_factory):
    root = tmp_path_factory.mktemp("tuning")
    report = root / "tuning.json"
    argv = ["tune", "--dataset", str(games_cut), "--method", "id-sasrec", "--grid", "learning_rate=1e-2,1e-4",
            "--grid", "max_history=3,8", "--max-sequence", "30", "--max-epochs", "4", "--patience", "1",
            "--out", str(root / "runs"), "--cells", str(root / "cells"), "--report", str(report)]
    cli.main(argv)
    return argv, report, root


def test_every_configuration_is_trained_and_the_best_on_validation_wins(tuned):
    _, report, root = tuned
    entry = json.loads(report.read_text())["datasets"]["amazon-games"]["id-sasrec"]
    assert [t["config"] for t in entry["trials"]] == [
        {"learning_rate": 0.01, "max_history": 3}, {"learning_rate": 0.01, "max_history": 8},
        {"learning_rate": 0.0001, "max_history": 3}, {"learning_rate": 0.0001, "max_history": 8}]
    converged = [t for t in entry["trials"] if not t["capped"]] or entry["trials"]
    assert entry["best"] == max(converged, key=lambda t: t["validation"]["recall@20"])["config"]
    assert all("test" not in t for t in entry["trials"])  # selection never sees the test split
    assert len({t["validation"]["recall@20"] for t in entry["trials"]}) > 1  # the settings change the result
    assert entry["command"].startswith("python -m training.llm2rec.cli tune") and entry["machine"]["cores"] >= 1
    assert entry["training"] == TRAINING_PROCEDURE  # which training procedure the trials ran under
    assert all("threads" in t["computed_on"] for t in entry["trials"])  # and where each ran
    assert {t["precision"] for t in entry["trials"]} <= {"fp32", "bf16"}  # and in which precision
    table = report.with_suffix(".md").read_text()
    first = entry["trials"][0]
    assert f"| {first['precision']}, {first['computed_on']} |" in table and "| 0.01 | 3 |" in table
    assert entry["at_edge"] == [] and entry["unbracketed"] == ["learning_rate", "max_history"]
    assert entry["winner_at"]["learning_rate"] == ("highest" if entry["best"]["learning_rate"] == 0.01 else "lowest")
    assert (f"not bracketed: learning_rate (winner at the {entry['winner_at']['learning_rate']}), max_history (winner "
            f"at the {entry['winner_at']['max_history']})") in report.with_suffix(".md").read_text()
    assert report.with_suffix(".png").stat().st_size > 5_000


def test_a_rerun_on_another_machine_trains_nothing_again(tuned, capsys, tmp_path):
    argv, report, root = tuned
    assert not list((root / "cells").rglob("*.pt"))  # finished cells only: small enough for git
    before = json.loads(report.read_text())["datasets"]["amazon-games"]["id-sasrec"]["trials"]
    elsewhere = argv.copy()
    elsewhere[argv.index("--out") + 1] = str(tmp_path / "runs")  # a new machine: its own runs/, the cells from git
    cli.main(elsewhere)
    shown = capsys.readouterr().out
    assert shown.count("done before, validation R@10") == 4 and "test R@10" not in shown  # tuning never shows test
    assert "already recorded: no configuration is new or trained again" in shown
    after = json.loads(report.read_text())["datasets"]["amazon-games"]["id-sasrec"]["trials"]
    assert [t["validation"] for t in after] == [t["validation"] for t in before]


def test_a_later_grid_widens_the_entry_under_the_same_protocol_and_replaces_it_under_another(tuned, games_cut,
                                                                                            capsys, tmp_path):
    _, report, root = tuned
    shutil.copytree(root / "cells", tmp_path / "cells")
    widened = tmp_path / "tuning.json"
    shutil.copy(report, widened)

    def run(*grid: str, max_epochs: str = "4", patience: str = "1") -> dict:  # the fixture's command but for these
        grids = [argument for values in grid for argument in ("--grid", values)]
        cli.main(["tune", "--dataset", str(games_cut), "--method", "id-sasrec", *grids,
                  "--max-sequence", "30", "--max-epochs", max_epochs, "--patience", patience,
                  "--out", str(tmp_path / "runs"), "--cells", str(tmp_path / "cells"), "--report", str(widened)])
        return json.loads(widened.read_text())["datasets"]["amazon-games"]["id-sasrec"]

    before = json.loads(report.read_text())["datasets"]["amazon-games"]["id-sasrec"]
    # A third learning rate under a higher epoch cap (only a cap: the protocol is the same).
    entry = run("learning_rate=1e-3", "max_history=3,8", max_epochs="5")
    shown = capsys.readouterr().out
    assert "widened the earlier grid to 6 configurations" in shown
    assert entry["trials"][:4] == before["trials"] and len(entry["trials"]) == 6
    assert entry["grid"] == {"learning_rate": [0.01, 0.0001, 0.001], "max_history": [3, 8]}
    converged = [t for t in entry["trials"] if not t["capped"]] or entry["trials"]
    assert entry["best"] == max(converged, key=lambda t: t["validation"]["recall@20"])["config"]
    assert entry["command"] == before["command"] and "learning_rate=1e-3" in entry["widened_by"][0]["command"]
    assert "Widened by `python -m training.llm2rec.cli tune" in widened.with_suffix(".md").read_text()
    rate_at = entry["winner_at"]["learning_rate"]  # three rates now: the winner's is the lowest, highest or inside
    assert (f"grid's edge for learning_rate (its {rate_at} value)" in shown) == (rate_at != "inside")

    # Another patience: the earlier trials are not comparable, so the new grid replaces them.
    entry = run("learning_rate=1e-3", "max_history=3", patience="2")
    assert "replaced the earlier grid, run under another protocol (patience 1 -> 2)" in capsys.readouterr().out
    assert [t["config"] for t in entry["trials"]] == [{"learning_rate": 0.001, "max_history": 3}]
    assert "widened_by" not in entry


def test_an_entry_another_run_wrote_while_this_one_trained_is_kept(tuned, monkeypatch, tmp_path):
    argv, report, root = tuned
    shared = tmp_path / "tuning.json"
    shutil.copy(report, shared)
    train = tuning.tune

    def tune_beside_another_run(*args, **kwargs):
        result = train(*args, **kwargs)
        meanwhile = json.loads(shared.read_text())  # another tune, e.g. on another dataset, records its grid
        theirs = meanwhile["datasets"]["amazon-games"]["id-sasrec"] | {"command": "the other run"}
        meanwhile["datasets"]["another-dataset"] = {"id-gru4rec": theirs}
        shared.write_text(json.dumps(meanwhile))
        return result

    monkeypatch.setattr(tuning, "tune", tune_beside_another_run)
    rerun = argv.copy()
    rerun[argv.index("--report") + 1] = str(shared)
    rerun[argv.index("--grid") + 1] = "learning_rate=1e-2"  # one of the trained configurations: read from its cell
    cli.main(rerun)
    datasets = json.loads(shared.read_text())["datasets"]
    assert datasets["another-dataset"]["id-gru4rec"]["command"] == "the other run"
    assert len(datasets["amazon-games"]["id-sasrec"]["trials"]) == 4


def test_widening_keeps_a_configuration_trained_again_in_its_place_and_chooses_the_winner_again():
    def trial(rate: float, recall: float, capped: bool = False) -> dict:
        return {"config": {"learning_rate": rate}, "validation": {"recall@20": recall}, "capped": capped}

    def entry(trials: list[dict], patience: int = 20) -> dict:
        return {"grid": {"learning_rate": [t["config"]["learning_rate"] for t in trials]}, "seed": 0,
                "training": TRAINING_PROCEDURE, "trials": trials, "best": trials[0]["config"],
                "base_protocol": {"patience": patience, "max_epochs": 400}}

    report = {"datasets": {}}
    assert record(report, "d", "m", entry([trial(1e-2, 0.10), trial(1e-3, 0.12, capped=True)]), "first") == "recorded"
    later = entry([trial(1e-3, 0.13), trial(1e-4, 0.11)])
    later["base_protocol"]["max_epochs"] = 800  # the capped configuration again, under a higher cap
    assert record(report, "d", "m", later, "second") == "widened the earlier grid to 3 configurations"
    widened = report["datasets"]["d"]["m"]
    assert [(t["config"]["learning_rate"], t["validation"]["recall@20"]) for t in widened["trials"]] == [
        (1e-2, 0.10), (1e-3, 0.13), (1e-4, 0.11)]
    assert widened["best"] == {"learning_rate": 1e-3} and widened["command"] == "first"
    assert [run["command"] for run in widened["widened_by"]] == ["second"]
    assert widened["widened_by"][0]["max_epochs"] == 800
    assert "2 of the" not in edge_note(widened)  # every combination of one field's values was trained

    assert record(report, "d", "m", entry([trial(1e-3, 0.05)], patience=5), "third").startswith(
        "replaced the earlier grid, run under another protocol (patience 20 -> 5)")
    assert report["datasets"]["d"]["m"]["command"] == "third"


def test_evaluate_trains_a_tuned_method_with_its_winner(tuned, games_cut, tmp_path):
    _, report, _ = tuned
    best = json.loads(report.read_text())["datasets"]["amazon-games"]["id-sasrec"]["best"]
    out = tmp_path / "evaluation"
    cli.main(["evaluate", "--in-domain", str(games_cut), "--methods", "id-sasrec", "id-gru4rec", "--seeds", "1",
              "--max-sequence", "30", "--max-epochs", "4", "--patience", "1", "--tuned", str(report),
              "--out", str(out), "--report", str(out / "quality.json")])
    methods = json.loads((out / "quality.json").read_text())["datasets"]["amazon-games"]["methods"]
    assert methods["id-sasrec"]["tuned"] == best and "tuned" not in methods["id-gru4rec"]
    # The winner's own tuning cell and the evaluation's cell of seed 0 trained the same model: same validation.
    entry = json.loads(report.read_text())["datasets"]["amazon-games"]["id-sasrec"]
    winner = next(t for t in entry["trials"] if t["config"] == best)
    cell = json.loads((out / "cells" / "amazon-games" / "id-sasrec" / "seed-0.json").read_text())
    assert cell["validation"] == winner["validation"]


def test_the_tuned_settings_are_part_of_a_cells_identity(games_cut, tmp_path):
    def identity(tuned: dict) -> str:
        harness = Harness(Evaluation(Protocol(seeds=(0,), max_sequence=30), in_domain=[str(games_cut)],
                                     methods=["id-sasrec"], tuned=tuned), tmp_path)
        return harness.cell_identity(harness.targets[0], harness.methods[0])

    assert identity({}) == identity({"other-dataset": {"id-sasrec": {"dropout": 0.5}}})
    assert identity({}) != identity({"amazon-games": {"id-sasrec": {"dropout": 0.5}}})
    with pytest.raises(ConfigError, match="rec_dim cannot be tuned"):
        identity({"amazon-games": {"id-sasrec": {"rec_dim": 64}}})


def test_grids_are_checked():
    assert configurations(parse_grid(["dropout=0.1,0.3", "max_history=5"])) == [
        {"dropout": 0.1, "max_history": 5}, {"dropout": 0.3, "max_history": 5}]
    for bad, message in ((["rec_dim=64"], "cannot be tuned"), (["max_history=ten"], "must be ints"),
                         (["dropout="], "distinct values"), (["dropout=0.1,0.1"], "distinct values"),
                         (["dropout=0.1", "dropout=0.2"], "given twice"), ([], "at least one")):
        with pytest.raises(ConfigError, match=message):
            parse_grid(bad)
    assert tuned_settings({"datasets": {"d": {"m": {"best": {"dropout": 0.1}}}}}) == {"d": {"m": {"dropout": 0.1}}}


def test_a_winner_at_the_end_of_a_three_value_field_is_flagged_as_at_the_edge():
    grid = {"learning_rate": [1e-3, 3e-4, 1e-4], "dropout": [0.2, 0.5, 0.7], "max_history": [10, 50]}
    edge = bracketing(grid, {"learning_rate": 3e-4, "dropout": 0.7, "max_history": 50})
    assert edge == {"winner_at": {"learning_rate": "inside", "dropout": "highest", "max_history": "highest"},
                    "at_edge": ["dropout"], "unbracketed": ["max_history"], "fixed": []}
    inside = bracketing(grid, {"learning_rate": 3e-4, "dropout": 0.5, "max_history": 10})
    assert inside["at_edge"] == [] and inside["winner_at"]["max_history"] == "lowest"
    note = edge_note({"grid": grid, "best": {"learning_rate": 1e-4, "dropout": 0.2, "max_history": 10},
                      "trials": [{}] * 18})
    assert "edge for learning_rate = 0.0001 (the lowest given), dropout = 0.2 (the lowest given)" in note
    assert "not bracketed: max_history (winner at the lowest)" in note
    one_rate = {"learning_rate": [1e-3], "dropout": [0.2, 0.5, 0.7], "max_history": [10, 50]}
    best = {"learning_rate": 1e-3, "dropout": 0.5, "max_history": 10}
    assert bracketing(one_rate, best) == {"winner_at": {"dropout": "inside", "max_history": "lowest"}, "at_edge": [],
                                          "unbracketed": ["max_history"], "fixed": ["learning_rate"]}
    assert "not tuned here: learning_rate = 0.001" in edge_note({"grid": one_rate, "best": best, "trials": [{}] * 6})
    widened = {"grid": {"dropout": [0.5, 0.7, 0.8], "max_history": [10, 50]},
               "best": {"dropout": 0.7, "max_history": 10}, "trials": [{}] * 5}  # dropout 0.8 with one history only
    assert "A widened grid: 5 of the 6 combinations of these values were trained" in edge_note(widened)


def test_the_next_step_moves_one_field_past_the_winners_end_of_its_range():
    entry = {"grid": {"learning_rate": [1e-3, 3e-4], "dropout": [0.2, 0.5], "max_history": [10, 50]},
             "best": {"learning_rate": 1e-3, "dropout": 0.5, "max_history": 10}}
    ladders = [("dropout", "up", [0.7, 0.8]), ("dropout", "down", [0.1, 0.0]), ("learning_rate", "up", [3e-3, 1e-2])]
    assert next_step(entry, ladders) == {"learning_rate": 1e-3, "dropout": 0.7, "max_history": 10}
    entry["grid"]["dropout"].append(0.7)  # 0.7 tried and lost: dropout is bracketed, the rate is next
    assert next_step(entry, ladders) == {"learning_rate": 3e-3, "dropout": 0.5, "max_history": 10}
    entry["grid"]["learning_rate"].append(3e-3)
    entry["best"]["learning_rate"] = 3e-3  # the higher rate won: the next one up
    assert next_step(entry, ladders) == {"learning_rate": 1e-2, "dropout": 0.5, "max_history": 10}
    entry["grid"]["learning_rate"].append(1e-2)  # the ladder is used up
    assert next_step(entry, ladders) is None
    low = {"grid": {"dropout": [0.2, 0.5], "learning_rate": [1e-3]}, "best": {"dropout": 0.2, "learning_rate": 1e-3}}
    assert next_step(low, ladders) == {"dropout": 0.1, "learning_rate": 1e-3}  # the lowest: down, nearest first
    low["best"]["dropout"] = 0.5
    assert next_step(low, ladders) == {"dropout": 0.7, "learning_rate": 1e-3}  # a field tried once is at both ends
    with pytest.raises(ConfigError, match="not a field of this grid"):
        next_step(low, [("max_history", "up", [100])])
    with pytest.raises(ConfigError, match="up or down"):
        next_step(low, [("dropout", "sideways", [0.9])])


def test_next_step_reads_the_report_tune_wrote(tuned, capsys):
    _, report, _ = tuned
    best = json.loads(report.read_text())["datasets"]["amazon-games"]["id-sasrec"]["best"]
    # history 3 and 8 were tried: a step past the winner's end of them, or nothing where it sits at neither end
    cli.main(["next-step", "--report", str(report), "--dataset", "amazon-games", "--method", "id-sasrec",
              "--down", "max_history=2,1", "--up", "max_history=12"])
    stepped = {**best, "max_history": 2 if best["max_history"] == 3 else 12}
    assert capsys.readouterr().out.split() == [f"{field}={value}" for field, value in stepped.items()]
    cli.main(["next-step", "--report", str(report), "--dataset", "amazon-games", "--method", "id-sasrec",
              "--up", f"learning_rate={best['learning_rate'] / 2}"])  # below the highest rate: not past it
    assert capsys.readouterr().out.strip() == ""
    for argv, message in ((["--method", "id-gru4rec"], "has no tuned id-gru4rec on amazon-games"),
                          (["--method", "id-sasrec", "--up", "rec_dim=64"], "--up 'rec_dim=64': 'rec_dim' cannot")):
        with pytest.raises(SystemExit):
            cli.main(["next-step", "--report", str(report), "--dataset", "amazon-games", *argv])
        assert message in capsys.readouterr().err
