#!/usr/bin/env bash
# Issue #13: the full protocol on the full datasets (every user, whole histories), 3 seeds, early stopping under
# evaluate's 800-epoch cap, the ID baselines trained with the settings `tune` chose on validation
# (reports/tuning.json: run scripts/tune-baselines.sh first). Trains the encoders it compares if they are missing:
# the cpu preset's LLM2Rec encoder (runs/cpu) and an LLM2Vec-style baseline (runs/llm2vec: MNTP then SimCSE with
# dropout positives on the backbone, bidirectional attention, as LLM2Vec; no CSFT). Days of CPU on 2 cores; every
# step resumes where it stopped (training from its checkpoint, evaluation from its finished cells, which are small
# JSON files under reports/cells/quality-full: commit them as they come, machines change). TARGETS="..." and
# METHODS="..." run a part; SEEDS, THREADS as for the other scripts. The report: reports/quality.{json,md,png}, of
# every cell; a part writes the report of its own cells to runs/evaluation-full/part-report.{json,md,png} instead,
# so that it never replaces the whole table (`bash scripts/evaluate-full.sh --report-only` writes that from the cells).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${TARGETS:-}${METHODS:-}${SEEDS:-}" ]; then REPORT=${REPORT:-runs/evaluation-full/part-report.json}; fi
DATA=${LLM2REC_DATA_DIR:-../shared/data}
TRAIN_SETS="$DATA/amazon-games $DATA/movielens-small"
THREADS=${THREADS:-2}
TARGETS=${TARGETS:-"--in-domain $DATA/amazon-games $DATA/movielens-small --out-of-domain $DATA/amazon-scientific --zero-shot $DATA/amazon-scientific"}
METHODS=${METHODS:-"popularity id-sasrec id-gru4rec raw-backbone-sasrec minilm-sasrec llm2vec-sasrec llm2rec-sasrec llm2rec-gru4rec"}
# Every planned step of each encoder stage, however long it takes: the preset's time caps (made for a 2-hour budget
# on an idle AVX-512-BF16 machine) would end a stage early on a slower or busier one, and the encoder compared would
# depend on the machine's load (run cpu-20261203T231408Z: 431 of 800 SimCSE steps on the AVX2 VM beside other jobs).
ALL_STEPS="--set csft.max_minutes=null --set mntp.max_minutes=null --set simcse.max_minutes=null"
# Does a method of this run embed with source $1 (and is it a run that computes, not --report-only)?
uses() { [[ " $METHODS " == *" $1-"* && " $* " != *" --report-only "* ]]; }
if uses llm2rec "$@" && [ ! -f runs/cpu/training-run.json ]; then
  # shellcheck disable=SC2086
  .venv/bin/python -m training.llm2rec.cli train --preset cpu --datasets $TRAIN_SETS --out runs/cpu --threads "$THREADS" \
    $ALL_STEPS
fi
if uses llm2vec "$@" && [ ! -f runs/llm2vec/training-run.json ]; then
  # shellcheck disable=SC2086
  .venv/bin/python -m training.llm2rec.cli train --preset cpu --datasets $TRAIN_SETS --out runs/llm2vec \
    --threads "$THREADS" --set 'stages=["mntp","simcse"]' --set iem_attention=bidirectional \
    --set simcse.positives=self --set simcse.dropout=0.2 $ALL_STEPS
fi
# shellcheck disable=SC2086
exec .venv/bin/python -m training.llm2rec.cli evaluate $TARGETS \
  --source llm2rec=run:runs/cpu --source llm2vec=run:runs/llm2vec --methods $METHODS \
  --tuned reports/tuning.json --seeds "${SEEDS:-3}" --threads "$THREADS" \
  --out runs/evaluation-full --cells reports/cells/quality-full --report "${REPORT:-reports/quality.json}" "$@"
