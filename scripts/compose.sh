#!/usr/bin/env bash
# Regenerates every code-first subgraph's SDL file and recomposes supergraph.graphql
# (the cart is schema-first: its subgraphs/cart/schema.graphql is edited by hand).
# The drift test (tests/supergraph.rs) fails until this has been run after an SDL change.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vitrina/target}"
[ -d scripts/compose/node_modules ] || npm ci --prefix scripts/compose --no-audit --no-fund
for service in identity catalog orders; do
  cargo run --release --quiet -- sdl "$service" --output file
done
node scripts/compose/compose.mjs --config supergraph.yaml --output supergraph.graphql
