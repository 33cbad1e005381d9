#!/usr/bin/env bash
# The main job on the embedded defaults (PGlite database, embedded vector index, CPU):
#   1. install what is missing (scripts/setup.sh);
#   2. pick the model: the newest LLM2Rec bundle of the registry that validates (src/cli/pick-bundle.ts;
#      `npm run train-and-activate` makes one), else the raw `quick` bundle, built from ../shared/data/amazon-games
#      unless it exists (LLM2REC_BUNDLE set by the caller wins over both);
#   3. start the GraphQL server;
#   4. load the amazon-games catalogue and interactions into it unless already loaded;
#   5. ask for ten recommendations after a history of five games, and keep serving.
# QUICKSTART_EXIT=1 stops the server after step 5 instead of serving on.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED_DATA="${LLM2REC_SHARED_DATA:-../shared/data}"
export PORT="${PORT:-4000}"
URL="http://127.0.0.1:${PORT}/graphql"
started=$(date +%s)

bash scripts/setup.sh

if [ -z "${LLM2REC_BUNDLE:-}" ]; then
  echo "== picking the model: the newest valid LLM2Rec bundle in ${LLM2REC_MODEL_REGISTRY:-bundles}, else bundles/quick"
  LLM2REC_BUNDLE=$(node --import tsx src/cli/pick-bundle.ts --fallback bundles/quick)
fi
export LLM2REC_BUNDLE
echo "== model bundle: $LLM2REC_BUNDLE"

if [ ! -f "$LLM2REC_BUNDLE/manifest.json" ]; then
  echo "== training the quick bundle into $LLM2REC_BUNDLE"
  .venv/bin/python -m training.llm2rec.cli bundle --preset quick \
    --datasets "$SHARED_DATA/amazon-games" --out "$LLM2REC_BUNDLE"
fi

echo "== starting the server on $URL"
node --import tsx src/cli/serve.ts &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:${PORT}/healthz" > /dev/null; do
  kill -0 $server 2>/dev/null || { echo "the server stopped; see its log above"; exit 1; }
  sleep 1
done

loaded=$(curl -s "$URL" -H 'content-type: application/json' \
  -d '{"query":"{ item(id: \"amazon-games:0\") { id } }"}')
if echo "$loaded" | grep -q '"item":null'; then
  echo "== loading amazon-games"
  node --import tsx src/cli/load-dataset.ts "$SHARED_DATA/amazon-games" --url "$URL"
fi

echo "== ten recommendations after five games"
node --import tsx src/cli/recommend.ts amazon-games:0 amazon-games:1 amazon-games:2 amazon-games:3 amazon-games:4 --url "$URL"
echo "== ready in $(( $(date +%s) - started )) s: GraphQL API at $URL"

if [ "${QUICKSTART_EXIT:-0}" = "1" ]; then exit 0; fi
wait $server
