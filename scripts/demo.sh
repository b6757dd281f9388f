#!/usr/bin/env bash
# The main job: set-up, then a demo against a throwaway TLS cluster (started,
# shown and removed by the demo itself).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo run --quiet -p pgssl_tests --bin pgssl-demo
