#!/usr/bin/env bash
# Vitrina's load report, reproduced by one command (see bench/src/main.rs):
#   scripts/bench.sh           the full report: 10,000 and 1,000,000 products, our router vs
#                              the direct subgraph, nginx, the stock Hive Router and Apollo
#                              Gateway (about 30 minutes after the first build)
#   scripts/bench.sh --quick   development mode, under 2 minutes: our router only
# Results: bench/results/report.md (+ report.png), or quick.md (+ quick.png).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vitrina/target}"

quick=0
for argument in "$@"; do [[ $argument == --quick ]] && quick=1; done

# The chart's text is drawn with DejaVu Sans.
if [[ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]]; then
  apt-get install -y --no-install-recommends fonts-dejavu-core >/dev/null
fi

# The report measures what ships: the `production` profile (Cargo.toml: fat LTO, one
# codegen unit), as the Docker image is built; its first build takes about 45 minutes here.
# Quick mode is for development: the release profile, whose artefacts the test command
# already built, so it starts in seconds.
if [[ $quick == 1 ]]; then profile=release; else profile=production; fi
cargo build --profile "$profile" --locked -p vitrina --bin vitrina -p vitrina-bench --bin vitrina-bench

if [[ $quick == 0 ]]; then
  # The stock Hive Router: its own `hive_router` binary, built from the same crate version,
  # lock file and profile as our router, so the difference measured is our plugins.
  cargo build --profile "$profile" --locked -p hive-router --bin hive_router
  export STOCK_HIVE_ROUTER_BIN="$CARGO_TARGET_DIR/$profile/hive_router"
  # Apollo Gateway, exactly the versions bench/gateway/package-lock.json pins.
  if ! cmp -s bench/gateway/package-lock.json bench/gateway/node_modules/.installed-lock.json 2>/dev/null; then
    npm ci --prefix bench/gateway --no-audit --no-fund --loglevel=error
    cp bench/gateway/package-lock.json bench/gateway/node_modules/.installed-lock.json
  fi
  export APOLLO_GATEWAY_DIR="$PWD/bench/gateway"
  # nginx from Debian's packages: the floor for one reverse-proxy hop.
  if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
    apt-get install -y --no-install-recommends nginx-light >/dev/null 2>&1 \
      || apt-get install -y --no-install-recommends nginx >/dev/null
  fi
  export NGINX_BIN="$(command -v nginx || echo /usr/sbin/nginx)"
fi

exec "$CARGO_TARGET_DIR/$profile/vitrina-bench" "$@"
