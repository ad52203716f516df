#!/usr/bin/env bash
# Memory of `fixahead run` under a sustained overload (docs/performance.md, "Memory under
# a sustained overload"): a replay publishes a history as fast as the broker takes it,
# several times what the pipeline stores, and fixahead's (and Mosquitto's) resident
# memory is sampled every 2 s with the ingest counters from /health.
#
#   scripts/overload-memory.sh HISTORY_DIR MODEL_DIR [mosquitto|embedded] [SECONDS]
#
# HISTORY_DIR: e.g. `fixahead simulate --out h --devices 1000 --days 365`.
# MODEL_DIR: e.g. `fixahead train --history h --horizon 14d --out m`.
# Needs a release build (cargo build --release), curl, python3, and for `mosquitto` the
# mosquitto binary. Prints one line per sample: t_s rss_kb received acked stored broker_rss_kb.
set -euo pipefail
HISTORY=${1:?history dir}
MODELS=${2:?model dir}
BROKER=${3:-mosquitto}
SECS=${4:-120}
BIN=${BIN:-./target/release/fixahead}
WORK=$(mktemp -d)
MQTT_PORT=18830
HTTP=127.0.0.1:18080
ADMIN_KEY="fxa_overload-bench-admin-key-0123456789abcdef"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

broker_pid=""
if [ "$BROKER" = mosquitto ]; then
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 1000\nmax_queued_messages 10000000\n' \
    "$MQTT_PORT" > "$WORK/mosquitto.conf"
  mosquitto -c "$WORK/mosquitto.conf" > "$WORK/mosquitto.log" 2>&1 & broker_pid=$!; pids+=("$broker_pid")
  sleep 1
  mqtt=(--mqtt-url "mqtt://127.0.0.1:$MQTT_PORT")
else
  mqtt=(--mqtt-listen "127.0.0.1:$MQTT_PORT" --allow-anonymous)
fi
FIXAHEAD_ADMIN_KEY=$ADMIN_KEY "$BIN" run --data-dir "$WORK/data" --model-dir "$MODELS" "${mqtt[@]}" \
  --http-listen "$HTTP" --max-future-skew off > "$WORK/run.log" 2>&1 & run_pid=$!; pids+=("$run_pid")
sleep 5
"$BIN" replay "$HISTORY" --mqtt-url "mqtt://127.0.0.1:$MQTT_PORT" --connections 4 > "$WORK/replay.log" 2>&1 & pids+=($!)

echo "t_s rss_kb received acked stored broker_rss_kb"
for ((t = 0; t < SECS; t += 2)); do
  rss=$(awk '/VmRSS/{print $2}' "/proc/$run_pid/status")
  brss=-
  [ -n "$broker_pid" ] && brss=$(awk '/VmRSS/{print $2}' "/proc/$broker_pid/status")
  counters=$(curl -s -H "Authorization: Bearer $ADMIN_KEY" "http://$HTTP/health" |
    python3 -c "import sys, json; d = json.load(sys.stdin)['ingest']; print(d['received'], d['acked'], d['stored_telemetry'])" 2>/dev/null || echo "- - -")
  echo "$t $rss $counters $brss"
  sleep 2
done
