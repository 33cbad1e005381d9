#!/usr/bin/env bash
# The parity report, one command: PyTorch vs onnxruntime (Python) vs onnxruntime-node on real titles and histories
# from ../shared/data, the tokenizer on every title, and the int8 encoder's fidelity, into reports/parity.json.
#
#   bash scripts/parity-report.sh [bundle]        (npm run parity -- [bundle]; default bundles/quick)
#
# Adds the int8 encoder first (training.llm2rec.quantize) if the bundle has none. Extra arguments after the bundle go
# to `parity prepare` (e.g. --users 50 --titles 100). PARITY_OUT overrides the report path. Exits non-zero when a
# bound is missed (the report is still written, with "passed": false and the failures).
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=${1:-bundles/quick}
shift || true
OUT=${PARITY_OUT:-reports/parity.json}
PYTHON=.venv/bin/python
WORK=$(mktemp -d "${TMPDIR:-/tmp}/llm2rec-parity-XXXXXX")
trap 'rm -rf "$WORK"' EXIT

if ! "$PYTHON" -c 'import json, sys; sys.exit(0 if "encoder_int8" in json.load(open(sys.argv[1]))["graphs"] else 1)' "$BUNDLE/manifest.json"; then
  echo "== quantize: adding the int8 encoder to $BUNDLE"
  "$PYTHON" -m training.llm2rec.quantize --bundle "$BUNDLE"
fi
echo "== PyTorch and onnxruntime (Python)"
"$PYTHON" -m training.llm2rec.parity prepare --bundle "$BUNDLE" --work "$WORK" "$@" > "$WORK/prepare.log"
echo "== onnxruntime-node (the server's RecommendationModel)"
node --import tsx src/cli/parity.ts --bundle "$BUNDLE" --work "$WORK" > "$WORK/node.log"
echo "== report"
"$PYTHON" -m training.llm2rec.parity report --work "$WORK" --out "$OUT"
