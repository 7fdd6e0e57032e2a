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
if ! cmp -s scripts/compose/package-lock.json scripts/compose/node_modules/.installed-lock.json 2>/dev/null; then
  npm ci --prefix scripts/compose --no-audit --no-fund --loglevel=error
  cp scripts/compose/package-lock.json scripts/compose/node_modules/.installed-lock.json
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

# Keep cargo's output, then close with one total line for the whole workspace
# (cargo's own last line is a per-crate doc-test summary).
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --release --workspace --locked "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
