#!/usr/bin/env bash
# Peak memory of the webhook under large /mutate reviews: the hold guard's JSON trees are the
# server's largest allocation per request, and the chart limits the pod to 384 Mi.
#
#   benches/large_bodies.sh            # build, then measure (about a minute)
#   NO_BUILD=1 benches/large_bodies.sh # reuse target/release
#   ENV_VARS=110000 ...                # larger env bodies (6.6 MB; the default 40,000: 2.4 MB)
#
# Three bodies, each the load-test review (tests/fixtures/load/rollout-update-review.json)
# grown in both `object` and `oldObject`, written to a temporary directory:
#   managed-fields  36,000 FieldsV1 entries in managedFields (2.8 MB)
#   env             40,000 env variables in the pod template (2.4 MB)
#   env-in-flight   the same with a canary in flight (currentPodHash != stableRS), so hold
#                   compares the pod templates of object and oldObject (which differ: the
#                   review is a new revision)
# Each is POSTed 64 times, 16 at once, to a fresh `serve --argo-rollouts-version 1.8.1`
# (hold is the default guard there, and the Rollout is flagged, so hold runs and patches),
# over TLS on 127.0.0.1 with oha; the table gives VmHWM of the server after the run.
# Needs oha (`cargo install oha --locked`), curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-64}
CONCURRENCY=${CONCURRENCY:-16}
PORT=${PORT:-28443} ADMIN=${ADMIN:-28080}

for tool in oha curl python3; do
  command -v "$tool" >/dev/null || { echo "large_bodies.sh: $tool is not installed" >&2; exit 2; }
done
if [[ -z "${NO_BUILD:-}" ]]; then
  cargo build --release --quiet --bin rollout-guard
fi
BIN=target/release/rollout-guard
TMP=$(mktemp -d)
PID=
cleanup() {
  if [[ -n "$PID" ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

"$BIN" certs --out-dir "$TMP/certs" >/dev/null
python3 - "$TMP" "${ENV_VARS:-40000}" <<'EOF'
import json, sys
out = sys.argv[1]
env_vars = int(sys.argv[2])
base = json.load(open("tests/fixtures/load/rollout-update-review.json"))

def write(name, grow):
    review = json.loads(json.dumps(base))
    for key in ("object", "oldObject"):
        grow(review["request"][key])
    with open(f"{out}/{name}.json", "w") as f:
        json.dump(review, f, separators=(",", ":"))

def managed_fields(obj):
    fields = {f"f:k{i}": {"f:a": {}, "f:b": {"f:c": {}}} for i in range(36000)}
    obj["metadata"]["managedFields"].append({"manager": "big", "operation": "Apply",
        "apiVersion": "argoproj.io/v1alpha1", "fieldsType": "FieldsV1", "fieldsV1": fields})

def env(obj):
    container = obj["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": f"V{i}", "value": "x"} for i in range(env_vars)]

def env_in_flight(obj):
    env(obj)
    obj["status"]["currentPodHash"] = "canary-hash"
    obj["status"]["stableRS"] = "stable-hash"

write("managed-fields", managed_fields)
write("env", env)
write("env-in-flight", env_in_flight)
EOF

echo "| body | bytes | answered 200 | reviews/s | peak RSS (VmHWM) |"
echo "|---|---:|---:|---:|---:|"
for body in managed-fields env env-in-flight; do
  "$BIN" serve --addr "127.0.0.1:$PORT" --admin-addr "127.0.0.1:$ADMIN" \
    --tls-cert "$TMP/certs/tls.crt" --tls-key "$TMP/certs/tls.key" \
    --template-source files --templates tests/fixtures/load/templates \
    --argo-rollouts-version 1.8.1 --log-level warn >/dev/null 2>"$TMP/server.err" &
  PID=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null && break
    sleep 0.1
  done
  result=$(oha --no-tui -n "$REQUESTS" -c "$CONCURRENCY" -m POST --insecure \
    -H 'Content-Type: application/json' -D "$TMP/$body.json" \
    "https://127.0.0.1:$PORT/mutate?timeout=10s" 2>&1)
  ok=$(grep -oE '\[200\] [0-9]+' <<<"$result" | awk '{print $2}')
  rps=$(grep -oE 'Requests/sec:[[:space:]]+[0-9.]+' <<<"$result" | awk '{printf "%.0f", $2}')
  hwm=$(awk '/VmHWM/ {printf "%.0f MiB", $2 / 1024}' "/proc/$PID/status")
  echo "| $body | $(stat -c %s "$TMP/$body.json") | ${ok:-0} of $REQUESTS | ${rps:-?} | $hwm |"
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
done
