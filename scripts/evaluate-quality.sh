#!/usr/bin/env bash
# The evaluation of issue #4 on 4,000-user cuts (docs/RESULTS.md's appendix, reports/cut-4000-users/quality.json):
# every method on the shared datasets, in-domain, out-of-domain and zero-shot, 3 seeds. Resumable: finished cells
# in runs/evaluation are kept.
#   bash scripts/evaluate-quality.sh                 # everything, then the report
#   TARGETS="--out-of-domain ../shared/data/amazon-scientific" bash scripts/evaluate-quality.sh   # a part of it
# Needs the LLM2Rec run (runs/cpu) and the ablation runs (runs/ablation-no-csft, runs/ablation-no-mntp) that
# docs/RESULTS.md names; the budget flags below are the ones the report was made with.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${LLM2REC_DATA_DIR:-../shared/data}
TARGETS=${TARGETS:-"--in-domain $DATA/amazon-games $DATA/movielens-small --out-of-domain $DATA/amazon-scientific --zero-shot $DATA/amazon-scientific"}
METHODS=${METHODS:-"popularity id-sasrec raw-backbone-sasrec minilm-sasrec llm2rec-sasrec llm2rec-no-csft-sasrec llm2rec-no-mntp-sasrec llm2rec-no-simcse-sasrec id-gru4rec llm2rec-gru4rec"}
# shellcheck disable=SC2086
exec .venv/bin/python -m training.llm2rec.cli evaluate $TARGETS \
  --source llm2rec=run:runs/cpu \
  --source llm2rec-no-csft=run:runs/ablation-no-csft \
  --source llm2rec-no-mntp=run:runs/ablation-no-mntp \
  --source llm2rec-no-simcse=run:runs/cpu@mntp \
  --methods $METHODS \
  --seeds "${SEEDS:-3}" --max-users 4000 --max-sequence 50 --max-epochs 20 --patience 3 \
  --threads "${THREADS:-1}" --out runs/evaluation --report "${REPORT:-reports/cut-4000-users/quality.json}" "$@"
