#!/usr/bin/env bash
# Load benchmark of the admission webhook over TLS keep-alive on loopback, side by side with a
# do-nothing responder on the same stack (examples/null_server.rs: same flags, runtime, TLS,
# router, metrics and review log; NullReviewer instead of the rule engine).
#
#   benches/load.sh            # build, then measure (about 2 minutes)
#   NO_BUILD=1 benches/load.sh # reuse target/release
#   LOG_LEVEL=warn ...         # both servers without the per-review log line
#   ROUNDS=3 ...               # three null/real pairs per connection count; the table shows
#                              # the pair with the median ratio, every pair's ratio below it
#   CALIBRATE_US="3 7 11" ...  # also: the do-nothing server with reviews that spin N µs,
#                              # at $CALIBRATE_CONNECTIONS (16), as a share of the plain one
#   LOADGEN_SCHED=batch ...    # run wrk and oha as SCHED_BATCH (`chrt --batch 0`): the load
#                              # generator then no longer preempts a server thread when an
#                              # answer wakes it (see benches/README.md, "Who takes the cores")
#
# Needs wrk (Debian's wrk speaks HTTPS) for saturation and oha for the fixed rate
# (`cargo install oha --locked`); curl and jq. Everything is bounded: each load runs for
# $SECONDS_PER_RUN seconds against 127.0.0.1, and both servers are stopped on exit.
#
# Body: tests/fixtures/load/rollout-update-review.json (regenerate with
# benches/make_review.py), POSTed to /validate?timeout=10s. The real server is given
# tests/fixtures/load/templates, so the Rollout's templates resolve and every review ends
# "warned" (checked from its /metrics after the run). Both servers log one JSON line per review
# at info level, to /dev/null.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
RATE=${RATE:-2000}
RATE_CONNECTIONS=${RATE_CONNECTIONS:-16}
CONNECTIONS=${CONNECTIONS:-"1 16 64"}
ROUNDS=${ROUNDS:-1}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "load.sh: ROUNDS must be a positive integer, not $ROUNDS" >&2; exit 2; }
BODY=tests/fixtures/load/rollout-update-review.json
TEMPLATES=tests/fixtures/load/templates
CALIBRATE_US=${CALIBRATE_US:-}
CALIBRATE_CONNECTIONS=${CALIBRATE_CONNECTIONS:-16}
REAL_PORT=18443 REAL_ADMIN=18080 NULL_PORT=19443 NULL_ADMIN=19080 BUSY_PORT=20443 BUSY_ADMIN=20080

# The load generator's scheduling policy: as is (the default), or SCHED_BATCH.
case ${LOADGEN_SCHED:-normal} in
  normal) LOADGEN=() ;;
  batch) LOADGEN=(chrt --batch 0) ;;
  *) echo "load.sh: LOADGEN_SCHED must be normal or batch, not ${LOADGEN_SCHED}" >&2; exit 2 ;;
esac

for tool in wrk oha curl jq ${LOADGEN[0]:-}; do
  command -v "$tool" >/dev/null || { echo "load.sh: $tool is not installed" >&2; exit 2; }
done

if [[ -z "${NO_BUILD:-}" ]]; then
  cargo build --release --quiet --bin rollout-guard --example null_server
fi
BIN=target/release/rollout-guard
NULL_BIN=target/release/examples/null_server

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

"$BIN" certs --out-dir "$TMP/certs" >/dev/null

# start NAME PORT ADMIN_PORT BINARY [FLAGS...]: starts a server, waits until it is ready.
start() {
  local name=$1 port=$2 admin=$3 bin=$4
  shift 4
  "$bin" serve --addr "127.0.0.1:$port" --admin-addr "127.0.0.1:$admin" \
    --tls-cert "$TMP/certs/tls.crt" --tls-key "$TMP/certs/tls.key" \
    --log-format json --log-level ${LOG_LEVEL:-info} --shutdown-delay 0s "$@" \
    >/dev/null 2>"$TMP/$name.err" &
  PIDS+=("$!")
  eval "${name}_PID=$!"
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "load.sh: $name did not become ready:" >&2
  cat "$TMP/$name.err" >&2
  exit 1
}

start NULL "$NULL_PORT" "$NULL_ADMIN" "$NULL_BIN"
start REAL "$REAL_PORT" "$REAL_ADMIN" "$BIN" --template-source files --templates "$TEMPLATES"

TICKS=$(getconf CLK_TCK)
# CPU time (user + system) of a process, in microseconds.
cpu_us() { awk -v t="$TICKS" '{ printf "%d", ($14 + $15) * 1e6 / t }' "/proc/$1/stat"; }
# Context switches of all a process's threads: "voluntary involuntary".
switches() {
  cat /proc/"$1"/task/*/status 2>/dev/null |
    awk '/^voluntary_ctxt_switches/ { v += $2 } /^nonvoluntary_ctxt_switches/ { n += $2 } END { print v + 0, n + 0 }'
}
hwm_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

export REVIEW_BODY=$BODY REVIEW_PATH="/validate?timeout=10s"
declare -A RPS CPU P50 P99 ERR SENT INVOL
SENT[null]=0 SENT[real]=0

# saturate NAME PORT PID CONNECTIONS: closed-loop load at the given connection count.
saturate() {
  local name=$1 port=$2 pid=$3 c=$4 threads=2 before after line
  ((c < threads)) && threads=$c
  local switched_before switched_after
  read -r _ switched_before < <(switches "$pid")
  before=$(cpu_us "$pid")
  line=$("${LOADGEN[@]}" wrk -t"$threads" -c"$c" -d"${SECONDS_PER_RUN}s" --timeout 5s -s benches/review.lua \
    "https://127.0.0.1:$port" | grep '^WRK')
  after=$(cpu_us "$pid")
  read -r _ switched_after < <(switches "$pid")
  local requests rps errors non2xx p50 p99
  requests=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
  rps=$(sed -E 's/.*rps=([0-9]+).*/\1/' <<<"$line")
  errors=$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$line")
  non2xx=$(sed -E 's/.*non2xx=([0-9]+).*/\1/' <<<"$line")
  p50=$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<<"$line")
  p99=$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$line")
  SENT[$name]=$((SENT[$name] + requests))
  RPS[$name,$c]=$rps
  CPU[$name,$c]=$(((after - before) / (requests > 0 ? requests : 1)))
  INVOL[$name,$c]=$(awk -v s=$((switched_after - switched_before)) -v r="$requests" 'BEGIN { printf "%.2f", (r > 0 ? s / r : 0) }')
  P50[$name,$c]=$p50
  P99[$name,$c]=$p99
  ERR[$name,$c]=$((errors + non2xx))
}

# fixed NAME PORT: open-loop load at $RATE/s, latency corrected for coordinated omission.
fixed() {
  local name=$1 port=$2 out
  out="$TMP/oha-$name.json"
  "${LOADGEN[@]}" oha --no-tui --output-format json -z "${SECONDS_PER_RUN}s" -q "$RATE" -c "$RATE_CONNECTIONS" \
    --latency-correction --insecure -m POST -T application/json -D "$BODY" \
    "https://127.0.0.1:$port/validate?timeout=10s" >"$out"
  SENT[$name]=$((SENT[$name] + $(jq '[.statusCodeDistribution[]] | add // 0' "$out")))
  RPS[$name,fixed]=$(jq '.summary.requestsPerSec | round' "$out")
  P50[$name,fixed]=$(jq '.latencyPercentiles.p50 * 1e6 | round' "$out")
  P99[$name,fixed]=$(jq '.latencyPercentiles.p99 * 1e6 | round' "$out")
  P999[$name]=$(jq '.latencyPercentiles["p99.9"] * 1e6 | round' "$out")
  ERRORS[$name]=$(jq -c '.errorDistribution' "$out")
  # oha cancels the requests still in flight when -z runs out ("aborted due to deadline"):
  # the load's end, not the server's errors; reported apart.
  ERR[$name,fixed]=$(jq '([.statusCodeDistribution | to_entries[] | select(.key != "200") | .value] | add // 0) + ([.errorDistribution | to_entries[] | select(.key != "aborted due to deadline") | .value] | add // 0)' "$out")
}
declare -A P999 ERRORS

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "concurrent fuzzing processes: $(pgrep -fc 'fuzz' || true)"
echo "load generator scheduling: ${LOADGEN_SCHED:-normal}"
echo "body: $BODY ($(wc -c <"$BODY") bytes), POST /validate; ${SECONDS_PER_RUN}s per run"
echo "RSS after start: null $(rss_kib "$NULL_PID") KiB, real $(rss_kib "$REAL_PID") KiB"

# Warm-up (TLS sessions, allocator, caches), not reported.
warm() {
  local line
  line=$("${LOADGEN[@]}" wrk -t2 -c16 -d2s -s benches/review.lua "https://127.0.0.1:$2" | grep '^WRK')
  SENT[$1]=$((SENT[$1] + $(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")))
}
warm null "$NULL_PORT"
warm real "$REAL_PORT"

# Each connection count: $ROUNDS pairs (null, then real), back to back. The table shows the
# pair with the median ratio, so one pair that met a busy host does not make the figure; the
# ratio of every pair is printed below it, and errors are summed over all of them.
declare -A RATIOS ERRSUM
for c in $CONNECTIONS; do
  declare -A KEPT=()
  for ((r = 1; r <= ROUNDS; r++)); do
    saturate null "$NULL_PORT" "$NULL_PID" "$c"
    saturate real "$REAL_PORT" "$REAL_PID" "$c"
    ratio=$(awk -v r="${RPS[real,$c]}" -v n="${RPS[null,$c]}" 'BEGIN { printf "%.4f", r / n }')
    RATIOS[$c]+="$ratio "
    for name in null real; do
      ERRSUM[$name,$c]=$((${ERRSUM[$name,$c]:-0} + ${ERR[$name,$c]}))
      KEPT[$name,$r]="${RPS[$name,$c]} ${CPU[$name,$c]} ${INVOL[$name,$c]} ${P50[$name,$c]} ${P99[$name,$c]}"
    done
  done
  median=$(for r in $(seq "$ROUNDS"); do echo "$(cut -d' ' -f"$r" <<<"${RATIOS[$c]}") $r"; done |
    sort -n | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2) { print $2 }')
  for name in null real; do
    read -r "RPS[$name,$c]" "CPU[$name,$c]" "INVOL[$name,$c]" "P50[$name,$c]" "P99[$name,$c]" <<<"${KEPT[$name,$median]}"
    ERR[$name,$c]=${ERRSUM[$name,$c]}
  done
done
fixed null "$NULL_PORT"
fixed real "$REAL_PORT"

# Calibration: how throughput falls with the review's cost alone (a spin, no working set).
declare -A BUSY_RPS
for us in $CALIBRATE_US; do
  NULL_REVIEW_BUSY_US=$us start BUSY "$BUSY_PORT" "$BUSY_ADMIN" "$NULL_BIN"
  saturate busy "$BUSY_PORT" "$BUSY_PID" "$CALIBRATE_CONNECTIONS"
  BUSY_RPS[$us]=${RPS[busy,$CALIBRATE_CONNECTIONS]}
  kill "$BUSY_PID" && wait "$BUSY_PID" 2>/dev/null || true
done
if [[ -n "$CALIBRATE_US" ]]; then
  saturate nullcal "$NULL_PORT" "$NULL_PID" "$CALIBRATE_CONNECTIONS"
fi

metrics=$(curl -sf "http://127.0.0.1:$REAL_ADMIN/metrics")
warned=$(awk -F' ' '/^rollout_guard_reviews_total\{endpoint="validate",outcome="warned"\}/ { print $2 }' <<<"$metrics")
other=$(awk -F' ' '/^rollout_guard_reviews_total\{endpoint="validate",outcome="(allowed|denied|mutated|error)"\}/ { s += $2 } END { print s + 0 }' <<<"$metrics")

echo
echo "| load | null rps | real rps | real/null | null CPU µs/review | real CPU µs/review | preempted per review null/real | null p50/p99 µs | real p50/p99 µs | errors null/real |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for c in $CONNECTIONS; do
  ratio=$(awk -v r="${RPS[real,$c]}" -v n="${RPS[null,$c]}" 'BEGIN { printf "%.0f%%", 100 * r / n }')
  echo "| saturation, $c conn | ${RPS[null,$c]} | ${RPS[real,$c]} | $ratio | ${CPU[null,$c]} | ${CPU[real,$c]} | ${INVOL[null,$c]} / ${INVOL[real,$c]} | ${P50[null,$c]} / ${P99[null,$c]} | ${P50[real,$c]} / ${P99[real,$c]} | ${ERR[null,$c]} / ${ERR[real,$c]} |"
done
if ((ROUNDS > 1)); then
  for c in $CONNECTIONS; do
    echo "real / null of each pair at $c conn: $(for x in ${RATIOS[$c]}; do awk -v x="$x" 'BEGIN { printf "%.0f%% ", 100 * x }'; done)"
  done
fi
echo
echo "| fixed rate | achieved rps null / real | null p50 / p99 / p99.9 µs | real p50 / p99 / p99.9 µs | errors null/real |"
echo "|---|---:|---:|---:|---:|"
echo "| $RATE/s, $RATE_CONNECTIONS conn, corrected | ${RPS[null,fixed]} / ${RPS[real,fixed]} | ${P50[null,fixed]} / ${P99[null,fixed]} / ${P999[null]} | ${P50[real,fixed]} / ${P99[real,fixed]} / ${P999[real]} | ${ERR[null,fixed]} / ${ERR[real,fixed]} |"
echo "oha errors: null ${ERRORS[null]}, real ${ERRORS[real]}"
if [[ -n "$CALIBRATE_US" ]]; then
  echo
  echo "| do-nothing server, reviews spinning N µs, $CALIBRATE_CONNECTIONS conn | rps | share of the plain one (${RPS[nullcal,$CALIBRATE_CONNECTIONS]} rps, measured after) |"
  echo "|---|---:|---:|"
  for us in $CALIBRATE_US; do
    echo "| $us µs | ${BUSY_RPS[$us]} | $(awk -v r="${BUSY_RPS[$us]}" -v n="${RPS[nullcal,$CALIBRATE_CONNECTIONS]}" 'BEGIN { printf "%.0f%%", 100 * r / n }') |"
  done
fi
echo
echo "peak RSS (VmHWM): null $(hwm_kib "$NULL_PID") KiB, real $(hwm_kib "$REAL_PID") KiB"
echo "real server verdicts on /validate: warned $warned, other $other (completed requests sent: ${SENT[real]})"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg); concurrent fuzzing processes: $(pgrep -fc 'fuzz' || true)"
