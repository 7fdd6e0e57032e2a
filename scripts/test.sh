#!/usr/bin/env bash
# Runs Vitrina's whole test suite, doing every set-up step a fresh machine needs first.
# This is the README's test command; .ci/run calls it after fmt and clippy.
set -euo pipefail
cd "$(dirname "$0")/.."
# Build artefacts live outside the clone so repeated runs (and `cargo run --release`) reuse them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vitrina/target}"

need() { command -v "$1" >/dev/null 2>&1 || { echo "test setup: '$1' is required ($2)" >&2; exit 1; }; }
need cargo "the Rust toolchain"
need node "composition drift test (Node.js 18+)"
need npm "installs the composition package"

# Composition tooling (drift test): install exactly what the lock file pins.
if ! cmp -s scripts/compose/package-lock.json scripts/compose/node_modules/.package-lock.json 2>/dev/null; then
  npm ci --prefix scripts/compose --no-audit --no-fund --loglevel=error
fi

# PostgreSQL for the integration tests (each test creates and drops its own database).
export TEST_POSTGRES_URL="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "test setup: starting the local PostgreSQL cluster" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  fi
  pg_isready -q -h 127.0.0.1 -p 5432 || { echo "test setup: PostgreSQL is not reachable at 127.0.0.1:5432" >&2; exit 1; }
fi

cargo test --release --workspace --locked "$@"
