#!/usr/bin/env bash
# Issue #13's remaining full-data work in the order docs/RESULTS.md gives ("What is left"), as two lanes of one
# thread each so that a 2-core machine runs both: `text` (the sequence models over the text tables: amazon-games'
# seeds, then LLM2Rec + GRU4Rec there, then zero-shot on amazon-scientific) and `ids` (the ID baselines: the
# steps along the tuning grids, then their test cells). Every command in a lane resumes where it stopped (finished
# cells and tuning configurations are JSON under reports/cells, checkpoints under runs/), so after a session ends or
# the machine changes, the same command carries on:
#   bash scripts/evaluate-full-campaign.sh          # both lanes in the background, logs in runs/logs/lane-*.log
#   bash scripts/evaluate-full-campaign.sh ids      # one lane in the foreground
# A lane already running is not started twice (a lock file per lane). THREADS (default 1) and NICE (default 5) per
# lane. Commit reports/cells and reports/tuning.* as they change: runs/ stays behind when the machine changes.
#
# The ID lane's rule for the grids (docs/RESULTS.md, "Learning rate, on every grid"): for each method, while its
# winner has the largest dropout tried, try the next one up at the winner's other settings; while it has the
# smallest, the next one down; then, while it has the largest learning rate tried (a field tried at one value
# is at both ends), the next rate up. Only then do the test cells train, with the winner's settings.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."
DATA=${LLM2REC_DATA_DIR:-../shared/data}
export THREADS=${THREADS:-1}
NICE=${NICE:-5}

if [ $# -eq 0 ]; then
  bash scripts/setup.sh > /dev/null  # a new machine has no .venv; quick when there is nothing to install
  mkdir -p runs/logs
  for lane in text ids; do
    setsid nohup bash "$self" "$lane" >> "runs/logs/lane-$lane.log" 2>&1 < /dev/null &
    echo "lane $lane: pid $!, log runs/logs/lane-$lane.log"
  done
  exit 0
fi

lane=$1
mkdir -p runs/logs
exec 9> "runs/logs/lane-$lane.lock"
flock -n 9 || { echo "lane $lane is already running (runs/logs/lane-$lane.lock)" >&2; exit 1; }
echo "== lane $lane started $(date -u +%FT%TZ) on $(hostname)"

full() { nice -n "$NICE" bash scripts/evaluate-full.sh "$@"; }
tune() { nice -n "$NICE" bash scripts/tune-baselines.sh "$@"; }

# Steps each ID method of a dataset by the rule above until there is no next step: training/llm2rec/tune.py's
# next_step reads the winner from reports/tuning.json and says which configuration to train next, if any.
steps() {  # dataset dropouts-up dropouts-down [tune-baselines args]; dropouts as V1,V2 nearest first, or ""
  local dataset=$1 up=$2 down=$3 method config previous kv; shift 3
  local -A c
  for method in id-sasrec id-gru4rec; do
    previous=""
    while true; do
      config=$(.venv/bin/python -m training.llm2rec.cli next-step --dataset "$dataset" --method $method \
        ${up:+--up dropout=$up} ${down:+--down dropout=$down} --up learning_rate=3e-3,1e-2)
      [ -n "$config" ] || break
      [ "$config" != "$previous" ] || { echo "step $config trained but not in reports/tuning.json" >&2; exit 1; }
      previous=$config
      c=(); for kv in $config; do c[${kv%%=*}]=${kv#*=}; done
      echo "== step: $dataset $method $config"
      DATASETS=$dataset METHODS=$method LEARNING_RATES=${c[learning_rate]} DROPOUTS=${c[dropout]} \
        HISTORIES=${c[max_history]} PATIENCES=${c[patience]:-} tune "$@"
    done
  done
}

case $lane in
  text)
    games="--in-domain $DATA/amazon-games"
    SEEDS=2 METHODS="raw-backbone-sasrec llm2rec-sasrec" TARGETS=$games full
    SEEDS=3 METHODS="raw-backbone-sasrec llm2rec-sasrec minilm-sasrec llm2vec-sasrec" TARGETS=$games full
    SEEDS=3 METHODS="llm2rec-gru4rec" TARGETS=$games full
    for seeds in 1 2 3; do  # one seed of every method first
      SEEDS=$seeds METHODS="llm2rec-sasrec raw-backbone-sasrec minilm-sasrec llm2vec-sasrec llm2rec-gru4rec" \
        TARGETS="--zero-shot $DATA/amazon-scientific" full
    done
    ;;
  ids)
    ids="id-sasrec id-gru4rec"
    # amazon-scientific: grids complete but for the learning rate (1e-3, the highest tried, won both); its test
    # cells train again only where a winner changes (a cell's identity includes its tuned settings).
    steps amazon-scientific "" ""
    SEEDS=3 METHODS=$ids TARGETS="--out-of-domain $DATA/amazon-scientific" full
    # movielens-small (patience 80): the steps, then the configuration the 800-epoch cap ended, under 1,600.
    steps movielens-small 0.7,0.8 0.1,0 --max-epochs 1600
    DATASETS=movielens-small tune --max-epochs 1600
    SEEDS=3 METHODS=$ids TARGETS="--in-domain $DATA/movielens-small" full
    # amazon-games: its default grid (learning rate 1e-3, dropout 0.2 / 0.5 / 0.7, history 10), steps, cells.
    DATASETS=amazon-games tune
    steps amazon-games 0.8 0.1,0
    SEEDS=3 METHODS=$ids TARGETS="--in-domain $DATA/amazon-games" full
    ;;
  *) echo "usage: $0 [text|ids]" >&2; exit 2 ;;
esac
echo "== lane $lane done $(date -u +%FT%TZ)"
