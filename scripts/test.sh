#!/usr/bin/env bash
# The test command: installs what is missing, starts a throwaway PostgreSQL (Debian's package) so the database
# tests run on both PGlite and PostgreSQL, then runs the TypeScript and Python suites.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# A server this command starts is stopped (and its data removed) when it ends, whatever the outcome; one that was
# already running (CI, a developer's) is left as it was.
if ! bash scripts/postgres-test-server.sh running 2>/dev/null; then
  trap 'bash scripts/postgres-test-server.sh stop' EXIT
fi
TEST_DATABASE_URL=$(bash scripts/postgres-test-server.sh start | tail -n 1)
export TEST_DATABASE_URL
echo "PostgreSQL for tests: $TEST_DATABASE_URL"
npm test
