#!/usr/bin/env bash
# The ablation encoders of docs/RESULTS.md: LLM2Rec without CSFT, and without MNTP (without SimCSE needs no run of
# its own: it is the full run's model after MNTP, run:runs/cpu@mntp). Resumable: run it again after an interruption.
#
# The full run (runs/cpu, preset cpu) reached 245 MNTP and 124 SimCSE steps before its time caps, its learning rate
# decaying to 0 at the cap: the ablations run exactly those steps, decaying to 0 at them, whatever the machine's load.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${LLM2REC_DATA_DIR:-../shared/data}
DATASETS="$DATA/amazon-games $DATA/movielens-small"
SAME="--set mntp.steps=245 --set mntp.max_minutes=null --set simcse.steps=124 --set simcse.max_minutes=null"
# shellcheck disable=SC2086
.venv/bin/python -m training.llm2rec.cli train --preset cpu --datasets $DATASETS --out runs/ablation-no-csft \
  --threads 1 $SAME --set 'stages=["mntp","simcse"]'
# shellcheck disable=SC2086
.venv/bin/python -m training.llm2rec.cli train --preset cpu --datasets $DATASETS --out runs/ablation-no-mntp \
  --threads 1 $SAME --set 'stages=["simcse"]' --set init_from=runs/cpu/csft
