"""One-off (issue #13, session 34, 2026-12-06): the committed cells over a trained encoder, computed before commit
c551bd1 named cells by the command that trained their encoder, get the identity that recipe names them by and the
encoder run they embedded with (reports/quality.json's `sources` named it before the change). Needs that command's
encoder trained again on this machine (runs/cpu or runs/llm2vec, as scripts/evaluate-full.sh trains them): its
recipe is the old run's. Results are not touched; run again, it changes nothing. Once per encoder:

    PYTHONPATH=. .venv/bin/python training/experiments/name_cells_by_recipe.py llm2rec cpu-20261205T112645Z  # done
    PYTHONPATH=. .venv/bin/python training/experiments/name_cells_by_recipe.py llm2vec cpu-20261205T121335Z
"""
import json
import sys
from pathlib import Path

from training.llm2rec import evaluate as evaluation
from training.llm2rec import tune as tuning

source, old_run = sys.argv[1], sys.argv[2]  # "llm2rec" cpu-20261205T112645Z / "llm2vec" cpu-20261205T121335Z
methods = {"llm2rec": ["llm2rec-sasrec", "llm2rec-gru4rec"], "llm2vec": ["llm2vec-sasrec"]}[source]
DATA = "../shared/data"
plan = evaluation.Evaluation(
    evaluation.with_seeds(evaluation.Protocol(), 3), [f"{DATA}/amazon-games", f"{DATA}/movielens-small"],
    [f"{DATA}/amazon-scientific"], [f"{DATA}/amazon-scientific"], [], methods,
    {"llm2rec": "run:runs/cpu", "llm2vec": "run:runs/llm2vec"},
    tuning.tuned_settings(tuning.load_report(Path("reports/tuning.json"))))
harness = evaluation.Harness(plan, Path("runs/evaluation-full"), cells=Path("reports/cells/quality-full"))
for target in harness.targets:
    for method in harness.methods:
        identity = harness.cell_identity(target, method)
        for seed in plan.protocol.seeds:
            file = harness.cell_file(target, method, seed)
            if not file.exists():
                continue
            cell = json.loads(file.read_text())
            run = cell.get("encoder_run", old_run)
            if run != old_run or cell["identity"] == identity:
                print(f"{file}: left as it is (encoder run {run}, identity {cell['identity']})")
                continue
            moved = {**cell, "identity": identity, "encoder_run": run}
            keys = [k for k in cell if k != "encoder_run"]  # encoder_run right after the identity, the rest in order
            order = keys[: keys.index("identity") + 1] + ["encoder_run"] + keys[keys.index("identity") + 1:]
            file.write_text(json.dumps({k: moved[k] for k in order}, indent=1) + "\n")
            print(f"{file}: identity {cell['identity']} -> {identity}, encoder run {run}")
