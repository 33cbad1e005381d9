#!/usr/bin/env bash
# A check on a finished ID grid of scripts/tune-baselines.sh (issue #13): early stopping under the authors' patience
# of 20 can end a configuration on an early plateau (movielens-small, history 50: validation Recall@20 near 0.04-0.05
# for 50-60 epochs before it rises). Every configuration of the dataset's grids in reports/tuning.json that ended
# before epoch $BEFORE (default 100) is trained again under patience $PATIENCE (default 80), one configuration at a
# time, into a report of its own (reports/tuning-plateau-check.json, cells under reports/cells/tuning-plateau-check;
# reports/tuning.json is not touched). If one beats its grid's winner, that grid's answer does not stand.
#   DATASETS=movielens-small THREADS=1 bash scripts/check-tuning-plateau.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${LLM2REC_DATA_DIR:-../shared/data}
for name in ${DATASETS:?give DATASETS, e.g. DATASETS=movielens-small}; do
  .venv/bin/python - "$name" "${BEFORE:-100}" <<'PY' |
import json, sys
name, before = sys.argv[1], int(sys.argv[2])
methods = json.load(open("reports/tuning.json"))["datasets"].get(name)
if not methods:
    sys.exit(f"reports/tuning.json has no grid for {name}: run scripts/tune-baselines.sh first")
for method, entry in methods.items():
    for trial in entry["trials"]:
        if trial["epochs_run"] < before and not trial["capped"]:
            config = trial["config"]
            print(method, config["learning_rate"], config["dropout"], config["max_history"])
PY
  while read -r method rate dropout history; do
    .venv/bin/python -m training.llm2rec.cli tune --dataset "$DATA/$name" --method "$method" \
      --grid "learning_rate=$rate" --grid "dropout=$dropout" --grid "max_history=$history" \
      --patience "${PATIENCE:-80}" --threads "${THREADS:-2}" --out runs/tuning-plateau-check \
      --cells reports/cells/tuning-plateau-check --report reports/tuning-plateau-check.json < /dev/null
  done
done
