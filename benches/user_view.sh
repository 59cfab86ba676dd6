#!/usr/bin/env bash
# The user's view of performance: the whole release `cws --provider aws` process against the
# moto EC2 emulator, behind a proxy that holds every request for L (default 200 ms) and logs
# its action and round trip. Prints wall time in L, calls and waves per command, for the
# default resolver (waves) beside the eager resolver and the sequential walk.
#
#   benches/user_view.sh                     # L = 200 ms
#   CWS_BENCH_LATENCY_MS=50 benches/user_view.sh
#
# Needs python3 (the moto harness installs the pinned moto into .venv-moto on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --locked -p cws-cli --all-features --test cli_aws user_view_table \
  -- --ignored --nocapture 2>&1 | grep -E '^(\||`cws|$)'
