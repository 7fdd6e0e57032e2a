#!/usr/bin/env bash
# Vitrina's soak run: 5 minutes (or --minutes N) of mixed storefront traffic through the
# router at the highest rate this machine sustains, then the checks: no 5xx, no leaked
# database or Redis connections, memory flat, and every order consistent with stock,
# events and read models. Writes bench/results/soak.md; exits non-zero when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vitrina/target}"

minutes=5
while [[ $# -gt 0 ]]; do
  case $1 in
    --minutes) minutes=$2; shift 2 ;;
    *) echo "usage: scripts/soak.sh [--minutes N]" >&2; exit 2 ;;
  esac
done

# The same package selection as the test command, so both reuse one set of artefacts.
cargo build --release --locked --workspace --all-targets
exec "$CARGO_TARGET_DIR/release/vitrina-bench" --soak-minutes "$minutes"
