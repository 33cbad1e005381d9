#!/usr/bin/env bash
# The main job on the embedded defaults (PGlite database, embedded vector index, CPU):
#   1. install what is missing (scripts/setup.sh);
#   2. build the `quick` model bundle from ../shared/data/amazon-games unless it exists;
#   3. start the GraphQL server;
#   4. load the amazon-games catalogue and interactions into it unless already loaded;
#   5. ask for ten recommendations after a history of five games, and keep serving.
# QUICKSTART_EXIT=1 stops the server after step 5 instead of serving on.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED_DATA="${LLM2REC_SHARED_DATA:-../shared/data}"
export LLM2REC_BUNDLE="${LLM2REC_BUNDLE:-bundles/quick}"
export PORT="${PORT:-4000}"
URL="http://127.0.0.1:${PORT}/graphql"
started=$(date +%s)

bash scripts/setup.sh

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
