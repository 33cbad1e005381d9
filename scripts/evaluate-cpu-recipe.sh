#!/usr/bin/env bash
# Issue #11's confirmation: the `cpu` preset's encoder (the run in RUN, default runs/cpu) against the raw backbone it
# starts from and MiniLM, under `evaluate`'s protocol (the same budget flags as scripts/evaluate-quality.sh):
# in-domain amazon-games and movielens-small, out-of-domain amazon-scientific, and amazon-scientific zero-shot
# (the sequence model trained on the in-domain sets), 3 seeds. Resumable: finished cells in runs/evaluation-cpu
# are kept. METHODS="..." runs a part of it; a second process with other METHODS may share the cells directory.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${LLM2REC_DATA_DIR:-../shared/data}
RUN=${RUN:-runs/cpu}
METHODS=${METHODS:-"raw-backbone-sasrec minilm-sasrec llm2rec-sasrec"}
# shellcheck disable=SC2086
exec .venv/bin/python -m training.llm2rec.cli evaluate \
  --in-domain "$DATA/amazon-games" "$DATA/movielens-small" --out-of-domain "$DATA/amazon-scientific" \
  --zero-shot "$DATA/amazon-scientific" \
  --source "llm2rec=run:$RUN" --methods $METHODS \
  --seeds "${SEEDS:-3}" --max-users 4000 --max-sequence 50 --max-epochs 20 --patience 3 \
  --threads "${THREADS:-1}" --out runs/evaluation-cpu --report "${REPORT:-reports/cut-4000-users/quality-cpu.json}" "$@"
