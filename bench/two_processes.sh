#!/usr/bin/env bash
# bench/two_processes.sh [OUTDIR]   (run from the project's root, after make test built .venv)
#
# Open loads against TWO `python wsgi.py` processes that share REDIS_URL, driven by the
# kit's load generator (../shared/bench/loadgen): customers' sockets are spread over the two
# processes round-robin (no proxy in the path, so the proxy's own CPU is not counted), the
# admins' too, so most deliveries cross processes through Redis. Prints one line per run;
# every run's JSON (CPU seconds per process and of PostgreSQL, latencies) stays in OUTDIR.
#   RATES="500 1000"     total messages per second offered (1 customer socket per msg/s)
#   MODES="gevent"       ASYNC_MODEs
# It uses the database bench_project that ../shared/bench/side-by-side.sh creates (its
# admin account and its cached tokens): run that once first.
set -euo pipefail
OUT=${1:-/tmp/two-processes-$(date -u +%Y%m%d-%H%M%S)}
RATES=${RATES:-"500 1000"}
MODES=${MODES:-gevent}
PG=postgresql://postgres@127.0.0.1:5432
SECRET=bench-secret-not-for-production-0123456789abcdef
REDIS=redis://127.0.0.1:6379/7
LG=${BENCH_WORK:-/tmp/chat-bench}/loadgen/run.js
PY=.venv/bin/python
mkdir -p "$OUT"
[ -f "$LG" ] || { echo "no load generator at $LG: run ../shared/bench/side-by-side.sh once" >&2; exit 2; }
PIDS=()
stop_all() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && { kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; }; done; PIDS=(); }
trap stop_all EXIT
wait_up() { for _ in $(seq 300); do curl -fs "$1/healthz" >/dev/null && return 0; sleep 0.2; done; echo "no server at $1" >&2; exit 1; }

for mode in $MODES; do
  for rate in $RATES; do
    redis-cli -u "$REDIS" flushdb >/dev/null
    for port in 5912 5922; do
      (exec env APP_CONFIG=production DATABASE_URL=$PG/bench_project SECRET_KEY=$SECRET JWT_SECRET_KEY=$SECRET \
        JWT_ACCESS_TOKEN_EXPIRES=86400 REDIS_URL=$REDIS ASYNC_MODE=$mode HOST=127.0.0.1 PORT=$port \
        "$PY" wsgi.py) >"$OUT/server-$mode-$rate-$port.log" 2>&1 </dev/null &
      PIDS+=("$!")
      wait_up "http://127.0.0.1:$port"
    done
    psql "$PG/bench_project" -q -c 'VACUUM ANALYZE' -c 'CHECKPOINT' >/dev/null 2>&1 || true
    name="open-$rate.two-$mode"
    # The generator caches tokens per first URL: 5912 is where side-by-side signed them up.
    node "$LG" --url http://127.0.0.1:5912 --url http://127.0.0.1:5922 \
      --admin-email bench-admin@example.com --admin-password bench-admin-password \
      --pid "${PIDS[0]}" --pid "${PIDS[1]}" --pg --pg-db bench_project \
      --customers "$rate" --admins 4 --mode open --rate "$rate" --duration 20 --warmup 5 \
      --out "$OUT/$name.json" >/dev/null 2>"$OUT/$name.stderr" || echo "$name: generator status $?" >&2
    echo "$name: $(tail -1 "$OUT/$name.stderr")"
    stop_all
  done
done
