#!/usr/bin/env bash
# The recipe search of issue #11: each trial trains a short variant of the `cpu` preset (fast path, fixed steps, no
# time caps), then scores the model after every stage with the proxy (training/llm2rec/proxy.py) on amazon-games
# (in-domain) and amazon-scientific (out-of-domain: no trial ever sees its titles). Rows go to
# reports/training-trials.json and reports/training-trials.png. Resumable: run it again, finished trials are kept
# (a trial's run directory is runs/trials/<name>); TRIALS="a b" runs only those.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${LLM2REC_SHARED_DATA:-../shared/data}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # on a shared 2-core machine one thread is steadier (docs/training.md)
TRAIN="--datasets $DATA/amazon-games $DATA/movielens-small"
PROXY="--proxy-dataset $DATA/amazon-games --proxy-dataset $DATA/amazon-scientific"
NO_CAPS="--set csft.max_minutes=null --set mntp.max_minutes=null --set simcse.max_minutes=null"
SHORT="--set csft.steps=300 --set csft.warmup_steps=20 --set mntp.steps=200 --set mntp.warmup_steps=20 \
  --set simcse.steps=200 --set simcse.warmup_steps=20"

trial() {  # trial NAME "NOTE" SETTINGS...
  local name=$1 note=$2
  shift 2
  if [ -n "${TRIALS:-}" ] && [[ " $TRIALS " != *" $name "* ]]; then return; fi
  if python3 -c "import json,sys; sys.exit(0 if '$name' in json.load(open('reports/training-trials.json'))['trials'] else 1)" 2>/dev/null; then
    echo "== $name: recorded"; return
  fi
  echo "== $name"
  # shellcheck disable=SC2086
  .venv/bin/python -m training.llm2rec.trials --name "$name" --note "$note" $TRAIN $PROXY $NO_CAPS "$@"
}

if [ ! -f reports/training-trials.json ]; then
  # shellcheck disable=SC2086
  .venv/bin/python -m training.llm2rec.trials $PROXY --baseline raw-6-causal=backbone:quick --baseline minilm=minilm \
    --baseline raw-6-bidirectional=smollm2:6:bidirectional
fi

# shellcheck disable=SC2086
trial plain-6 "the cpu recipe's shape at short steps: CSFT on the 6-layer stack (the LM head reads layer 6)" $SHORT
# shellcheck disable=SC2086
trial through-30 "CSFT through all 30 layers, only the first 6 trained: the head needs no relearning" $SHORT \
  --set csft.through_layers=30 --set csft.learning_rate=1e-4
# shellcheck disable=SC2086
trial next-item "no CSFT/MNTP: the contrastive stage alone, positives = the next item of a training history" \
  --set 'stages=["simcse"]' --set simcse.positives=next-item --set simcse.steps=300 --set simcse.warmup_steps=20 \
  --set simcse.learning_rate=5e-5
# shellcheck disable=SC2086
trial next-item-causal "next-item contrastive alone with the backbone's causal attention (raw causal encodes better than bidirectional), no dropout, higher learning rate" \
  --set 'stages=["simcse"]' --set simcse.positives=next-item --set iem_attention=causal --set simcse.dropout=0.0 \
  --set simcse.steps=400 --set simcse.warmup_steps=20 --set simcse.learning_rate=1e-4
# shellcheck disable=SC2086
trial next-item-causal-lora "as next-item-causal, but LoRA r=16 on all projections (the raw weights stay, a low-rank change on top)" \
  --set 'stages=["simcse"]' --set simcse.positives=next-item --set iem_attention=causal --set simcse.dropout=0.0 \
  --set simcse.steps=400 --set simcse.warmup_steps=20 --set simcse.learning_rate=5e-4 --set simcse.lora.enabled=true
# shellcheck disable=SC2086
trial csft-then-next-item "next-item-causal started from through-30's CSFT model (CSFT first, then the causal next-item contrastive stage)" \
  --set 'stages=["simcse"]' --set init_from=runs/trials/through-30/csft --set simcse.positives=next-item \
  --set iem_attention=causal --set simcse.dropout=0.0 --set simcse.steps=400 --set simcse.warmup_steps=20 \
  --set simcse.learning_rate=1e-4
# Session 9 (2026-12-02): the two search axes issue #11 names that the trials above left open, at the cpu recipe.
# shellcheck disable=SC2086
trial next-item-causal-b256 "as next-item-causal with 4x the batch (256 titles: 4x the in-batch negatives) for a quarter of the steps (the same titles seen), learning rate 2x" \
  --set 'stages=["simcse"]' --set simcse.positives=next-item --set iem_attention=causal --set simcse.dropout=0.0 \
  --set simcse.batch_size=256 --set simcse.steps=100 --set simcse.warmup_steps=5 --set simcse.learning_rate=2e-4
if ! python3 -c "import json,sys; sys.exit(0 if 'raw-12-causal' in json.load(open('reports/training-trials.json'))['baselines'] else 1)"; then
  # shellcheck disable=SC2086
  .venv/bin/python -m training.llm2rec.trials $PROXY --baseline raw-12-causal=smollm2:12:causal
fi
# shellcheck disable=SC2086
trial next-item-causal-12 "as next-item-causal on the first 12 layers instead of 6 (deeper encoder, 2x the cost per step)" \
  --set 'stages=["simcse"]' --set simcse.positives=next-item --set iem_attention=causal --set simcse.dropout=0.0 \
  --set simcse.steps=400 --set simcse.warmup_steps=20 --set simcse.learning_rate=1e-4 --set backbone.layers=12
# Session 12 (2026-12-03): the contrastive temperature (0.1 in every trial above): lower sharpens the pull of the
# hardest in-batch negatives, higher warps the backbone's space less (what the out-of-domain columns may need).
# shellcheck disable=SC2086
trial next-item-causal-t005 "as next-item-causal with temperature 0.05 (sharper: the hardest in-batch negatives weigh more)" \
  --set 'stages=["simcse"]' --set simcse.positives=next-item --set iem_attention=causal --set simcse.dropout=0.0 \
  --set simcse.steps=400 --set simcse.warmup_steps=20 --set simcse.learning_rate=1e-4 --set simcse.temperature=0.05
# shellcheck disable=SC2086
trial next-item-causal-t02 "as next-item-causal with temperature 0.2 (softer: the backbone's space is warped less)" \
  --set 'stages=["simcse"]' --set simcse.positives=next-item --set iem_attention=causal --set simcse.dropout=0.0 \
  --set simcse.steps=400 --set simcse.warmup_steps=20 --set simcse.learning_rate=1e-4 --set simcse.temperature=0.2
# The last search axis issue #11 names, CSFT's history length: `through-30`'s CSFT (the better of the two CSFT shapes)
# with the 3 most recent titles in the prompt instead of 10 (which the 64-token prompt already cut to about 5).
# shellcheck disable=SC2086
trial through-30-h3 "through-30's CSFT alone with a history of 3 titles instead of 10 (the 64-token prompt held about 5 of the 10)" \
  --set 'stages=["csft"]' --set csft.steps=300 --set csft.warmup_steps=20 --set csft.through_layers=30 \
  --set csft.learning_rate=1e-4 --set csft.max_history=3
