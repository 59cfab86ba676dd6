#!/usr/bin/env bash
# Fuzzes `cws serve`'s REST API with schemathesis, from the OpenAPI document the server itself
# serves: any 5xx, or any answer that does not match the document's schema for its status,
# fails the step. Runs twice: anonymously, then with an `admin` token. Bounded: a few examples
# per operation, a fixed seed (the same requests every run; set SCHEMATHESIS_SEED to explore),
# and a wall-clock limit per run. Called by .ci/run after the tests; runs alone as well
# (`bash .ci/schemathesis.sh`).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

st_version=4.32.5
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-25}"
seed="${SCHEMATHESIS_SEED:-20261130}"
# Seconds per run (two runs): one takes about 12 s on 2 cores.
run_limit=100

echo "-- schemathesis $st_version (its own venv, .venv-schemathesis)"
if [ ! -x .venv-schemathesis/bin/st ] \
  || ! .venv-schemathesis/bin/st --version 2>/dev/null | grep -q " $st_version\$"; then
  rm -rf .venv-schemathesis
  python3 -m venv .venv-schemathesis
  .venv-schemathesis/bin/pip install --quiet --disable-pip-version-check "schemathesis==$st_version"
fi
.venv-schemathesis/bin/st --version

echo "-- cws"
cargo build -p cws-cli --locked
cws_bin="$repo/target/debug/cws"

home="$(mktemp -d)"
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
  rm -rf "$home"
}
trap stop_server EXIT
# Nothing of the caller's environment (AWS settings above all) reaches cws: the default
# provider is LocalCloud, simulated and offline.
cws() { env -i PATH="$PATH" HOME="$home" CWS_HOME="$home" "$cws_bin" "$@"; }

# --rate-limit 0: a run sends ~1000 requests a minute from one address, past the default 1200
# per minute once both runs share a window; 429s would hide the routes from the fuzzer.
# Started directly (not through the `cws` function, which would put a subshell between `$!`
# and the server): `$!` is then the server itself, and stopping it leaves nothing running.
env -i PATH="$PATH" HOME="$home" CWS_HOME="$home" "$cws_bin" \
  serve --addr 127.0.0.1:0 --rate-limit 0 2> "$home/serve.log" &
server_pid=$!
port=""
for _ in $(seq 1 300); do
  port="$(sed -n 's|^cws serve: listening on http://127\.0\.0\.1:\([0-9][0-9]*\) .*|\1|p' "$home/serve.log")"
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "cws serve exited:"; cat "$home/serve.log"; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "cws serve did not say where it listens within 30 s:"; cat "$home/serve.log"; exit 1; }
base="http://127.0.0.1:$port"
echo "cws serve on $base (home $home)"

# The admin token's holder is alice, so she can publish the listing the fuzzer's dictionaries
# name: the registry routes then see an existing listing as often as a made-up one.
token="$(cws admin token create --user "Alice <alice@uni.edu>" --scope admin 2> "$home/token.err")" \
  || { cat "$home/token.err"; exit 1; }
[ -n "$token" ] || { echo "cws admin token create printed no token:"; cat "$home/token.err"; exit 1; }
CWS_TOKEN="$token" CWS_BASE="$base" python3 - <<'EOF'
import json, os, urllib.request
body = {"listing": "alice/lab", "name": "Lab", "description": "d", "category": "machine-learning",
        "template": "python-ml", "visibility": "public", "version": "1.0.0",
        "template_digest": "sha256:00", "region": "us-east-1",
        "image": {"ami_id": "ami-0123456789abcdef0", "architecture": "x86_64",
                  "snapshot_ids": [], "size_gib": 8},
        "notes": None, "speedup": None}
req = urllib.request.Request(os.environ["CWS_BASE"] + "/api/v1/listings", method="POST",
                             data=json.dumps(body).encode(),
                             headers={"Authorization": "Bearer " + os.environ["CWS_TOKEN"],
                                      "Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=30) as r:
    print("published alice/lab 1.0.0:", r.status)
EOF

# Real values beside the generated ones (each used with the given probability), so requests
# reach past "no such template/listing" to the code behind it.
cat > "$home/schemathesis.toml" <<'EOF'
[dictionaries.templates]
values = ["python-ml", "r-research", "bioinformatics", "gis-research"]
[dictionaries.regions]
values = ["us-east-1", "eu-west-1", "ap-south-1"]
[dictionaries.publishers]
values = ["alice"]
[dictionaries.slugs]
values = ["lab", "python-ml", "r-research"]
[dictionaries.versions]
values = ["1.0.0"]
[dictionaries.amis]
values = ["ami-0123456789abcdef0"]
# Page bounds at their edges; the last is usize::MAX (TOML integers stop at i64::MAX, so a
# string: it goes into the query as it is).
[dictionaries.page_bounds]
values = [0, 1, 100, 101, "18446744073709551615"]

[parameters]
"path.template" = { dictionary = "templates", probability = 0.7 }
"query.template" = { dictionary = "templates", probability = 0.7 }
"path.slug" = { dictionary = "slugs", probability = 0.7 }
"query.region" = { dictionary = "regions", probability = 0.5 }
"path.publisher" = { dictionary = "publishers", probability = 0.7 }
"path.version" = { dictionary = "versions", probability = 0.7 }
"path.ami_id" = { dictionary = "amis", probability = 0.7 }
"query.offset" = { dictionary = "page_bounds", probability = 0.3 }
"query.limit" = { dictionary = "page_bounds", probability = 0.3 }
EOF

# The checks: no 5xx, and every answer matches the document's schema for its status. Not
# status_code_conformance and the like: the document gives most routes one success status and
# `4XX`, which is what we hold the server to here.
run_st() {
  local what="$1"
  shift
  echo "-- schemathesis: $what"
  local code=0
  # From the scratch home: schemathesis leaves nothing in the checkout.
  (cd "$home" && timeout --kill-after=10 "$run_limit" "$repo/.venv-schemathesis/bin/st" \
    --config-file "$home/schemathesis.toml" run "$base/api/v1/openapi.json" --url "$base" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "$max_examples" --seed "$seed" \
    --generation-database none --no-color "$@") || code=$?
  if [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then
    echo "schemathesis ($what) did not finish within $run_limit s"
  fi
  return "$code"
}

failed=0
run_st "anonymous" || failed=1
run_st "with an admin token" -H "Authorization: Bearer $token" || failed=1
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "cws serve died during the run"
  failed=1
fi
if [ "$failed" -ne 0 ]; then
  echo "-- cws serve's log: panics, errors, warnings and 5xx, counted"
  # Without colours, thread ids and times, so that repeats count as one line.
  sed -e 's/\x1b\[[0-9;]*m//g' -e "s/^thread '[^']*' ([0-9]*) //" \
    -e 's/^[0-9T:.-]*Z *//' -e 's/request_id=[^ ]* //' -e 's/ ms=[0-9]*//' "$home/serve.log" \
    | grep -E 'panicked|overflow|ERROR|WARN|status=5[0-9][0-9]' | sort | uniq -c | sort -rn \
    | head -40 || true
  echo "schemathesis found problems (above)"
  exit 1
fi
echo "schemathesis: no 5xx, every answer matches the document"
