#!/usr/bin/env bash
# Prints the cws performance summary: one table with every figure of the performance model, its target and
# whether this machine met it.
#
#   benches/summary.sh            # builds the release `cws` (for the CLI cold-start row) first
#   benches/summary.sh --no-cli   # skips that build; the CLI row then says "not measured"
#
# If hyperfine is installed, the CLI cold start is cross-checked with it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" != "--no-cli" ]]; then
  cargo build --release -p cws-cli
fi
cargo bench -p cws-benches --bench summary

bin="${CARGO_TARGET_DIR:-target}/release/cws"
if [[ "${1:-}" != "--no-cli" ]] && command -v hyperfine >/dev/null && [[ -x "$bin" ]]; then
  home="$(mktemp -d)"
  trap 'rm -rf "$home"' EXIT
  # The first run seeds the LocalCloud state under the fresh home; time the runs after it.
  "$bin" --home "$home" --json ami resolve python-ml >/dev/null
  env -u CWS_REGION -u AWS_REGION -u CWS_PROVIDER -u CWS_HOME -u CWS_TEMPLATES_PATH \
    hyperfine -N --warmup 3 --runs 20 "$bin --home $home --json ami resolve python-ml"
fi
