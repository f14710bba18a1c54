#!/usr/bin/env bash
# The test command (`make test`; .ci/run calls it): lint, then the whole suite on SQLite,
# then every suite that touches metadata (the coordinator's own tests and the end-to-end
# tests against `shardbox up`) again on a throwaway PostgreSQL server, less the end-to-end
# modules marked backend_agnostic (big objects, dead nodes, process supervision: their
# metadata calls are the same ones the other modules make).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONDONTWRITEBYTECODE=1

# What the tests need (PostgreSQL, ClamAV, ...): installed by the project's own setup,
# idempotently (a few seconds when everything is there already).
bash scripts/setup.sh --test

.venv/bin/ruff check .

echo "== tests on SQLite (embedded default)"
SHARDBOX_TEST_DB=sqlite .venv/bin/pytest -q -p no:cacheprovider "$@"

echo "== metadata and S3 tests on PostgreSQL"
SHARDBOX_TEST_DB=postgres .venv/bin/pytest -q -p no:cacheprovider -m "not backend_agnostic" \
    tests/coordinator tests/integration "$@"
