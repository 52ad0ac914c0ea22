#!/usr/bin/env bash
# Prints streamrec's performance figures, one per line: `name value unit`, each beside a
# reference measured in the same run (a trivial Boost.Beast server on the same machine).
# Usage: bench/run.sh [seconds per load, default 10]. Needs a build (scripts/build) and
# ../shared/datasets. Servers bind to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
SECONDS_PER_RUN=${1:-10}
BIN=$BUILD/src/app/streamrec
LOAD=$BUILD/bench/streamrec-load
TRIVIAL=$BUILD/bench/trivial_server
DATASETS=${STREAMREC_DATASETS:-../shared/datasets}
CLICKS=$DATASETS/diginetica-srgnn/train_sessions.txt.gz
for f in "$BIN" "$LOAD" "$TRIVIAL" "$CLICKS"; do
  [ -e "$f" ] || { echo "missing $f (run scripts/build; datasets in $DATASETS)" >&2; exit 1; }
done
WORK=$(mktemp -d)
# Admin endpoints (catalog, rules) need a key; this one lives only for the run.
export STREAMREC_ADMIN_KEY="bench-admin-key-$(date +%s%N)-0123456789abcdef"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# start_streamrec NAME: a fresh data dir; sets PORT and PID.
start_streamrec() {
  # One load client on 127.0.0.1: the per-client rate limit would measure itself.
  printf 'auth:\n  rate_limit_per_s: 0\n' >"$WORK/$1.yaml"
  "$BIN" serve --config "$WORK/$1.yaml" --data-dir "$WORK/$1" --host 127.0.0.1 --port 0 \
    >"$WORK/$1.out" 2>"$WORK/$1.err" &
  PID=$!; PIDS+=("$PID")
  for _ in $(seq 100); do
    PORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$WORK/$1.out" 2>/dev/null | grep -o '[0-9]*$' || true)
    [ -n "$PORT" ] && return 0
    sleep 0.1
  done
  echo "streamrec did not start: $(cat "$WORK/$1.err")" >&2; exit 1
}
start_trivial() {
  "$TRIVIAL" --port 0 >"$WORK/trivial.out" 2>&1 &
  PID=$!; PIDS+=("$PID")
  for _ in $(seq 50); do
    PORT=$(grep -o 'listening [0-9]*' "$WORK/trivial.out" 2>/dev/null | grep -o '[0-9]*$' || true)
    [ -n "$PORT" ] && return 0
    sleep 0.1
  done
  echo "trivial_server did not start" >&2; exit 1
}
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }
# value NAME FILE: the value of figure NAME printed by streamrec-load.
value() { awk -v n="$1" '$1 == n { print $2 }' "$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
# quantile Q BUCKET_PREFIX PORT: histogram quantile from /metrics (linear inside the bucket),
# in ms. BUCKET_PREFIX is the bucket line up to its labels, e.g. 'name_bucket{' or
# 'name_bucket{route="x",'.
quantile() {
  curl -s "http://127.0.0.1:$3/metrics" | awk -v q="$1" -v m="$2" '
    index($0, m) == 1 {
      split($0, a, "le=\""); split(a[2], b, "\""); le = b[1]; n = $NF
      bounds[++k] = (le == "+Inf" ? -1 : le); counts[k] = n }
    END {
      total = counts[k]; if (total == 0) { print 0; exit }
      rank = q * total; prev_b = 0; prev_c = 0
      for (i = 1; i <= k; i++) {
        if (counts[i] >= rank) {
          hi = bounds[i] < 0 ? prev_b : bounds[i]
          f = (counts[i] > prev_c) ? (rank - prev_c) / (counts[i] - prev_c) : 1
          printf "%.3f", (prev_b + (hi - prev_b) * f) * 1000; exit }
        prev_b = bounds[i]; prev_c = counts[i] }
    }'
}
wait_processed() {  # PORT: until the pipeline's processed count stops moving
  local last=-1 now
  for _ in $(seq 600); do
    now=$(curl -s "http://127.0.0.1:$1/healthz" | grep -o '"processed":[0-9]*' | grep -o '[0-9]*$')
    [ "$now" = "$last" ] && return 0
    last=$now; sleep 0.5
  done
}

echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); load runs ${SECONDS_PER_RUN}s each; dataset diginetica-srgnn train clicks"
LOADARGS=(--dataset "$CLICKS" -d "$SECONDS_PER_RUN" --tenant bench)

# (a) ingest: tp2 batches of 10 and single events, durable acks, vs the trivial server.
start_trivial; T=$PORT; TP=$PID
"$LOAD" --url "http://127.0.0.1:$T" "${LOADARGS[@]}" --format tp2 --batch 10 -c 32 --prefix trivial_tp2_batch10_ >"$WORK/t1" 2>/dev/null
"$LOAD" --url "http://127.0.0.1:$T" "${LOADARGS[@]}" --format json --batch 1 -c 64 --prefix trivial_single_ >"$WORK/t2" 2>/dev/null
stop "$TP"
start_streamrec ingest; S=$PORT; SP=$PID
"$LOAD" --url "http://127.0.0.1:$S" "${LOADARGS[@]}" --format tp2 --batch 10 -c 32 --prefix ingest_tp2_batch10_ >"$WORK/s1" 2>/dev/null
"$LOAD" --url "http://127.0.0.1:$S" "${LOADARGS[@]}" --format json --batch 1 -c 64 --prefix ingest_single_ >"$WORK/s2" 2>/dev/null
wait_processed "$S"
stop "$SP"
grep -h -E "_(events_per_s|req_per_s|latency_p50_ms|latency_p99_ms|errors) " "$WORK/t1" "$WORK/s1" "$WORK/t2" "$WORK/s2"
echo "ingest_tp2_batch10_vs_trivial_ratio $(ratio "$(value ingest_tp2_batch10_events_per_s "$WORK/s1")" "$(value trivial_tp2_batch10_events_per_s "$WORK/t1")") x"
echo "ingest_single_vs_trivial_ratio $(ratio "$(value ingest_single_req_per_s "$WORK/s2")" "$(value trivial_single_req_per_s "$WORK/t2")") x"

# (b) freshness at a stated rate: 2,000 requests/s x 10 events = 20,000 events/s, for 40 s
# so that the run includes an item checkpoint (every 30 s by default).
start_streamrec fresh; S=$PORT; SP=$PID
"$LOAD" --url "http://127.0.0.1:$S" --dataset "$CLICKS" --tenant bench -d "${FRESHNESS_SECONDS:-40}" \
  --format tp2 --batch 10 -c 16 --rate 2000 --prefix freshness_load_ >"$WORK/f1" 2>/dev/null
grep -h -E "_(events_per_s|latency_p99_ms|errors) " "$WORK/f1"
wait_processed "$S"
echo "freshness_at_20k_events_per_s_p50_ms $(quantile 0.50 "streamrec_freshness_seconds_bucket{" "$S") ms"
echo "freshness_at_20k_events_per_s_p99_ms $(quantile 0.99 "streamrec_freshness_seconds_bucket{" "$S") ms"
echo "freshness_at_20k_events_per_s_p999_ms $(quantile 0.999 "streamrec_freshness_seconds_bucket{" "$S") ms"
echo "item_checkpoint_pause_max_ms $(quantile 1.0 "streamrec_pipeline_checkpoint_pause_seconds_bucket{" "$S") ms"
echo "log_commit_p50_ms $(quantile 0.50 "streamrec_log_commit_seconds_bucket{" "$S") ms"
echo "log_commit_p99_ms $(quantile 0.99 "streamrec_log_commit_seconds_bucket{" "$S") ms"

# (c) serving GET /v1/recommendations for the shoppers just replayed, beside the trivial server.
"$LOAD" --url "http://127.0.0.1:$S" --mode recs --dataset "$CLICKS" -d "$SECONDS_PER_RUN" \
  --recs-path '/v1/recommendations?user_id={user}&n=10&tenant=bench' -c 32 --prefix serve_max_ >"$WORK/r1" 2>/dev/null
"$LOAD" --url "http://127.0.0.1:$S" --mode recs --dataset "$CLICKS" -d "$SECONDS_PER_RUN" \
  --recs-path '/v1/recommendations?user_id={user}&n=10&tenant=bench' -c 32 --rate 20000 --prefix serve_at_20k_ >"$WORK/r2" 2>/dev/null
echo "serve_server_side_p50_ms $(quantile 0.50 'streamrec_http_request_seconds_bucket{route="recommendations",' "$S") ms"
echo "serve_server_side_p99_ms $(quantile 0.99 'streamrec_http_request_seconds_bucket{route="recommendations",' "$S") ms"

# (c2) the same at 20k req/s with catalog fields and a placement's business rules, beside
# the plain list in the same run: a catalog of every item (titles, prices, categories, 10%
# sold out) and rules that filter, diversify and limit.
zcat "$CLICKS" | tr ' ' '\n' | grep -v '^$' | sort -u | awk -v dir="$WORK" '
  { n = $1 + 0
    line = sprintf("{\"id\":\"%s\",\"title\":\"Item %s\",\"price\":%d.99,\"currency\":\"EUR\",\"categories\":[\"c%d\"],\"available\":%s,\"image_url\":\"https://cdn.example/%s.jpg\"}",
                   $1, $1, n % 90 + 10, n % 25, (n % 10 == 0 ? "false" : "true"), $1)
    f = sprintf("%s/catalog-%03d.json", dir, int(NR / 5000))
    if (!(f in started)) { started[f] = 1; printf "[" > f } else printf "," > f
    printf "%s", line > f }
  END { for (f in started) { printf "]" > f; close(f) } }'
ITEMS=0
for f in "$WORK"/catalog-*.json; do
  n=$(curl -s -X PUT -H "Authorization: Bearer $STREAMREC_ADMIN_KEY" -H 'Content-Type: application/json' \
        --data-binary @"$f" "http://127.0.0.1:$S/v1/items?tenant=bench" | grep -o '"upserted":[0-9]*' | grep -o '[0-9]*$')
  ITEMS=$((ITEMS + ${n:-0}))
done
curl -s -X PUT -H "Authorization: Bearer $STREAMREC_ADMIN_KEY" -H 'Content-Type: application/json' \
  --data '{"product_page":{"available_only":true,"diversity":{"max_per_category":2},"fill_from":"popularity","limit":10}}' \
  "http://127.0.0.1:$S/v1/rules?tenant=bench" >/dev/null
echo "rules_catalog_items $ITEMS count"
"$LOAD" --url "http://127.0.0.1:$S" --mode recs --dataset "$CLICKS" -d "$SECONDS_PER_RUN" \
  --recs-path '/v1/recommendations?user_id={user}&n=10&tenant=bench' -c 32 --rate 20000 --prefix serve_plain_at_20k_ >"$WORK/r4" 2>/dev/null
"$LOAD" --url "http://127.0.0.1:$S" --mode recs --dataset "$CLICKS" -d "$SECONDS_PER_RUN" \
  --recs-path '/v1/recommendations?user_id={user}&n=10&tenant=bench&placement=product_page' -c 32 --rate 20000 --prefix serve_rules_at_20k_ >"$WORK/r5" 2>/dev/null
grep -h -E "_(req_per_s|latency_p50_ms|latency_p99_ms|errors) " "$WORK/r4" "$WORK/r5"
echo "serve_rules_server_side_p50_ms $(quantile 0.50 'streamrec_http_request_seconds_bucket{route="recommendations_placement",' "$S") ms"
echo "serve_rules_server_side_p99_ms $(quantile 0.99 'streamrec_http_request_seconds_bucket{route="recommendations_placement",' "$S") ms"
stop "$SP"
start_trivial; T=$PORT; TP=$PID
"$LOAD" --url "http://127.0.0.1:$T" --mode recs --dataset "$CLICKS" -d "$SECONDS_PER_RUN" -c 32 --prefix trivial_get_max_ >"$WORK/r3" 2>/dev/null
stop "$TP"
grep -h -E "_(req_per_s|latency_p50_ms|latency_p99_ms|errors) " "$WORK/r1" "$WORK/r2" "$WORK/r3"
echo "serve_vs_trivial_ratio $(ratio "$(value serve_max_req_per_s "$WORK/r1")" "$(value trivial_get_max_req_per_s "$WORK/r3")") x"

# (d) resident memory per 1M active users: ~1.1M distinct shoppers (diginetica sessions, six
# passes under new user ids), every one with a window, a session and a stored list.
start_streamrec memory; S=$PORT; SP=$PID
sleep 1
RSS0=$(rss_kib "$SP")
"$LOAD" --url "http://127.0.0.1:$S" --dataset "$CLICKS" --tenant mem --format json --batch 100 -c 8 \
  -n 54400 --prefix memory_load_ >"$WORK/m1" 2>/dev/null
wait_processed "$S"
PROCESSED=$(curl -s "http://127.0.0.1:$S/metrics" | awk '/^streamrec_pipeline_events_total/ { s += $2 } END { print s }')
USERS=$(curl -s "http://127.0.0.1:$S/metrics" | awk '/^streamrec_state_users_estimate / { printf "%.0f", $2 }')
RSS1=$(rss_kib "$SP")
ACTIVE=1120020  # 186,670 sessions x 6 passes (54,400 requests x 100 events ~ 6 x 906,140 clicks)
grep -h -E "_(events_per_s|errors) " "$WORK/m1"
echo "memory_events_processed $PROCESSED count"
echo "memory_users_in_store_estimate $USERS count"
echo "memory_active_users $ACTIVE count"
echo "memory_rss_idle_mib $((RSS0 / 1024)) MiB"
echo "memory_rss_loaded_mib $((RSS1 / 1024)) MiB"
echo "memory_per_1m_active_users_gib $(awk -v a="$RSS1" -v b="$RSS0" -v u="$ACTIVE" 'BEGIN { printf "%.3f", (a - b) / 1048576 / u * 1e6 }') GiB"
echo "memory_store_bytes_mib $(curl -s "http://127.0.0.1:$S/metrics" | awk '/^streamrec_store_bytes / { printf "%.0f", $2 / 1048576 }') MiB"
stop "$SP"

# --- in process, no HTTP: the pipeline's built-in path beside YAML scenarios deciding its output
# (docs/SCENARIOS.md), and scored events/s with a learned model (docs/SASREC.md).
"$BUILD/bench/scenario_pipeline_bench" "$CLICKS" "$WORK/scenario" 2>/dev/null | grep -v " count$"
if [ -x "$BUILD/bench/pipeline_learned_bench" ]; then
  "$BUILD/bench/pipeline_learned_bench" "$CLICKS" "$WORK/learned" 20000 2>/dev/null |
    grep -v " count$"
fi
