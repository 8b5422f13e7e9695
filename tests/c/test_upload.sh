#!/usr/bin/env bash
# C tests of the upload engine (tests/c/test_upload.c) against the emulator: a 210 MB growing file in
# 41 parts, pushed bytes with backpressure, complete files (real-time and basic), kill -9 + resume,
# expired URLs, a 401 mid-upload, connection resets, a storm of 429s, cancel, a second 403, a paused
# channel, a file rewritten after upload, and argument checks. Each successful case checks the SHA-256 the emulator computed.
#
# Env: CARGO_TARGET_DIR (default ./target), FIO_EMULATOR_BIN, SAN=address to build with ASan,
# VALGRIND=1 to run the quick cases under valgrind. Prints "N passed, M failed" last.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
EMU="${FIO_EMULATOR_BIN:-$TARGET/debug/fio-emulator}"
LIBDIR="$TARGET/release"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fio-ctest-upload.XXXXXX")"
EMU_PID=""
PASS=0
FAIL=0
cleanup() {
  [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

[ -x "$EMU" ] || { echo "test_upload.sh: no emulator at $EMU (make emulator)" >&2; exit 1; }
[ -f "$LIBDIR/libframeio_c2c.so" ] || { echo "test_upload.sh: no library in $LIBDIR (make release)" >&2; exit 1; }

SANFLAGS=""
[ -n "${SAN:-}" ] && SANFLAGS="-fsanitize=$SAN -fno-omit-frame-pointer"
BIN="$WORK/test_upload"
${CC:-cc} -std=c11 -g -O1 -Wall -Wextra -Werror $SANFLAGS -I include tests/c/test_upload.c \
  -L "$LIBDIR" -lframeio_c2c -Wl,-rpath,"$LIBDIR" -lpthread -ldl -lm -o "$BIN" || exit 1
RUN=()
[ -n "${VALGRIND:-}" ] && RUN=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite)

start_emulator() {
  [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null
  rm -rf "$WORK/emu" "$WORK/ready" "$WORK"/*.tokens
  "$EMU" --port 0 --s3-port 0 --data-dir "$WORK/emu" --auto-approve --poll-interval 0.1 --quiet "$@" \
    >"$WORK/ready" 2>>"$WORK/emulator.log" &
  EMU_PID=$!
  for _ in $(seq 1 100); do [ -s "$WORK/ready" ] && break; sleep 0.05; done
  API="$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["api"])' "$WORK/ready")"
  export FIO_TEST_TOKENS="$WORK/device.tokens"
}

ctl() { # ctl METHOD PATH [JSON]
  python3 - "$API" "$1" "$2" "${3:-}" <<'EOF'
import json, sys, urllib.request
api, method, path, body = sys.argv[1:5]
req = urllib.request.Request(api + path, method=method, data=body.encode() if body else None,
                             headers={"content-type": "application/json"})
print(urllib.request.urlopen(req).read().decode())
EOF
}

asset_field() { # asset_field ID FIELD
  ctl GET "/_emulator/assets/$1" | python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1]))' "$2"
}

asset_by_name() {
  ctl GET /_emulator/assets | python3 -c 'import json,sys; print([a["id"] for a in json.load(sys.stdin) if a["name"]==sys.argv[1]][0])' "$1"
}

gen_file() { # gen_file PATH MIB
  head -c "$(( $2 * 1048576 + 4321 ))" /dev/urandom >"$1"
}

check_uploaded() { # check_uploaded ID FILE
  local state sha local_sha
  state="$(asset_field "$1" state)"
  sha="$(asset_field "$1" sha256)"
  local_sha="$(sha256sum "$2" | cut -d' ' -f1)"
  [ "$state" = uploaded ] || { echo "    asset $1 is $state, not uploaded"; return 1; }
  [ "$sha" = "$local_sha" ] || { echo "    SHA-256 mismatch: server $sha, file $local_sha"; return 1; }
}

result() { # result NAME STATUS START
  local secs=$(( $(date +%s) - $3 ))
  if [ "$2" -eq 0 ]; then PASS=$((PASS + 1)); echo "ok - $1 (${secs}s)"; else FAIL=$((FAIL + 1)); echo "not ok - $1 (${secs}s)"; fi
}

id_of() { sed -n 's/^ASSET_ID=//p' "$1" | tail -1; }

# --- cases ------------------------------------------------------------------------------------------

t=$(date +%s); start_emulator
"${RUN[@]}" "$BIN" "$API" api >"$WORK/out" 2>&1; rc=$?
[ $rc -eq 0 ] && [ "$(asset_field "$(id_of "$WORK/out")" state)" = uploaded ] || { rc=1; cat "$WORK/out"; }
result "argument checks, empty asset" $rc $t

t=$(date +%s)
"$BIN" "$API" grow "$WORK/grow.mp4" 210000000 >"$WORK/out" 2>&1; rc=$?
[ $rc -eq 0 ] && check_uploaded "$(id_of "$WORK/out")" "$WORK/grow.mp4" || { rc=1; cat "$WORK/out"; }
result "growing file 210 MB, $(sed -n 's/^PARTS=//p' "$WORK/out") parts" $rc $t
rm -f "$WORK/grow.mp4"

t=$(date +%s); gen_file "$WORK/push.bin" 30
"${RUN[@]}" "$BIN" "$API" push "$WORK/push.bin" >"$WORK/out" 2>&1; rc=$?
[ $rc -eq 0 ] && check_uploaded "$(id_of "$WORK/out")" "$WORK/push.bin" || { rc=1; cat "$WORK/out"; }
result "pushed bytes with a 12 MiB budget" $rc $t

t=$(date +%s)
"$BIN" "$API" complete "$WORK/push.bin" >"$WORK/out" 2>&1 && "$BIN" "$API" complete "$WORK/push.bin" basic >>"$WORK/out" 2>&1; rc=$?
[ $rc -eq 0 ] && check_uploaded "$(asset_by_name c-complete.mp4)" "$WORK/push.bin" \
  && check_uploaded "$(asset_by_name c-basic.mp4)" "$WORK/push.bin" || { rc=1; cat "$WORK/out"; }
result "complete file, real-time and basic" $rc $t

# kill -9 in the middle, then resume in a new process
t=$(date +%s); gen_file "$WORK/rec.mp4" 60
"$BIN" "$API" upload "$WORK/rec.mp4" "$WORK/rec.state" 8388608 >"$WORK/out" 2>&1 &
child=$!
rc=1
for _ in $(seq 1 600); do
  done_parts="$(python3 -c 'import json,sys
try: print(sum(1 for p in json.load(open(sys.argv[1]))["parts"] if p["done"]))
except Exception: print(0)' "$WORK/rec.state" 2>/dev/null)"
  if [ "${done_parts:-0}" -ge 3 ]; then kill -9 $child; wait $child 2>/dev/null; rc=0; break; fi
  sleep 0.05
done
if [ $rc -eq 0 ]; then
  before="$(ctl GET /_emulator/requests | python3 -c 'import json,sys; print(max([r["id"] for r in json.load(sys.stdin)] or [0]))')"
  "$BIN" "$API" resume "$WORK/rec.state" >"$WORK/out" 2>&1; rc=$?
  id="$(id_of "$WORK/out")"
  done_before="$(sed -n 's/^DONE_BEFORE_RESUME=//p' "$WORK/out")"
  resent="$(ctl GET /_emulator/requests | python3 -c 'import json,sys
print(sum(r.get("content_length") or 0 for r in json.load(sys.stdin) if r["port"]=="s3" and r["method"]=="PUT" and r["status"]==200 and r["id"]>int(sys.argv[1])))' "$before")"
  total="$(stat -c %s "$WORK/rec.mp4")"
  echo "    $done_parts parts done before kill -9; after resume $resent of $total bytes went out (only the unfinished parts)"
  [ $rc -eq 0 ] && [ "$resent" -eq $((total - done_before)) ] && check_uploaded "$id" "$WORK/rec.mp4" || { rc=1; cat "$WORK/out"; }
fi
result "kill -9 mid-upload, resume without re-sending finished parts" $rc $t

# URLs that expire after 1 s; the first PUT is held 2.5 s, so S3 answers 403 and the part is
# registered again (a second 403 in a row would be reported, per c2c-api.md 14.8)
t=$(date +%s); start_emulator --url-expiry 1
ctl POST /_emulator/faults '{"target":"s3","method":"PUT","delay_ms":2500,"count":1}' >/dev/null
"$BIN" "$API" upload "$WORK/push.bin" "$WORK/exp.state" 0 >"$WORK/out" 2>&1; rc=$?
rereg="$(sed -n 's/^REREGISTRATIONS=//p' "$WORK/out")"
[ $rc -eq 0 ] && [ "${rereg:-0}" -ge 1 ] && check_uploaded "$(id_of "$WORK/out")" "$WORK/push.bin" || { rc=1; cat "$WORK/out"; }
result "expired URLs re-registered ($rereg)" $rc $t

# 401 mid-upload: tokens expire while parts go out
t=$(date +%s); start_emulator
( sleep 1.0; ctl POST /_emulator/tokens/expire '{}' >/dev/null ) &
expirer=$!
"$BIN" "$API" upload "$WORK/rec.mp4" "$WORK/401.state" 20971520 >"$WORK/out" 2>&1; rc=$?
wait $expirer
n401="$(ctl GET /_emulator/requests | python3 -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin) if r["status"]==401))')"
[ $rc -eq 0 ] && [ "$n401" -ge 1 ] && check_uploaded "$(id_of "$WORK/out")" "$WORK/rec.mp4" || { rc=1; cat "$WORK/out"; }
result "401 mid-upload refreshed once ($n401 x 401)" $rc $t

# connection reset after 1 MB of a part, three times
t=$(date +%s); start_emulator
ctl POST /_emulator/faults '{"target":"s3","method":"PUT","reset_after_bytes":1000000,"count":3}' >/dev/null
"$BIN" "$API" upload "$WORK/push.bin" "$WORK/reset.state" 0 >"$WORK/out" 2>&1; rc=$?
[ $rc -eq 0 ] && check_uploaded "$(id_of "$WORK/out")" "$WORK/push.bin" || { rc=1; cat "$WORK/out"; }
result "connection reset mid-part" $rc $t

# a storm of 429s on the API (12 in a row; each waits at least 1 s, c2c-api.md 14.8)
t=$(date +%s); start_emulator
ctl POST /_emulator/faults '{"target":"api","path_prefix":"/v2/devices/assets/","status":429,"count":12,"headers":{"retry-after":"0"}}' >/dev/null
"$BIN" "$API" upload "$WORK/push.bin" "$WORK/429.state" 0 >"$WORK/out" 2>&1; rc=$?
n429="$(ctl GET /_emulator/requests | python3 -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin) if r["status"]==429))')"
[ $rc -eq 0 ] && [ "$n429" -eq 12 ] && check_uploaded "$(id_of "$WORK/out")" "$WORK/push.bin" || { rc=1; cat "$WORK/out"; }
result "storm of 429s ($n429)" $rc $t

# cancel from another thread
t=$(date +%s)
"${RUN[@]}" "$BIN" "$API" cancel "$WORK/rec.mp4" >"$WORK/out" 2>&1; rc=$?
[ $rc -eq 0 ] && [ "$(asset_field "$(id_of "$WORK/out")" state)" != uploaded ] || { rc=1; cat "$WORK/out"; }
result "cancel mid-upload: FIO_ERR_CANCELLED, asset not complete" $rc $t

# S3 rejects every PUT with 403: re-registered once, then reported with the part's detail
t=$(date +%s); start_emulator
ctl POST /_emulator/faults '{"target":"s3","method":"PUT","status":403,"count":1000,"body":"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"}' >/dev/null
"$BIN" "$API" fail "$WORK/push.bin" 14 >"$WORK/out" 2>&1; rc=$?
[ $rc -eq 0 ] || cat "$WORK/out"
result "second 403 reported as FIO_ERR_URL_EXPIRED with part detail" $rc $t

# lost network (S3 port answers 503 forever) until the retry deadline
t=$(date +%s); start_emulator
ctl POST /_emulator/faults '{"target":"s3","method":"PUT","status":503,"count":100000}' >/dev/null
"$BIN" "$API" fail "$WORK/push.bin" 13 >"$WORK/out" 2>&1; rc=$?
[ $rc -eq 0 ] || cat "$WORK/out"
result "failures past the retry deadline end with their status" $rc $t

# paused channel: 409 on create
t=$(date +%s); start_emulator
ctl POST /_emulator/channels/0/pause '{}' >/dev/null
"$BIN" "$API" fail "$WORK/push.bin" 11 >"$WORK/out" 2>&1; rc=$?
[ $rc -eq 0 ] || cat "$WORK/out"
result "paused channel: FIO_ERR_CHANNEL_PAUSED" $rc $t

# the file is patched after its first parts went out (not append-only): FIO_ERR_IO, asset incomplete
t=$(date +%s); start_emulator
"$BIN" "$API" rewrite "$WORK/rewrite.mov" >"$WORK/out" 2>&1; rc=$?
[ $rc -eq 0 ] && [ "$(asset_field "$(id_of "$WORK/out")" state)" != uploaded ] || { rc=1; cat "$WORK/out"; }
result "file rewritten after upload: FIO_ERR_IO, asset not completed" $rc $t

echo "$PASS passed, $FAIL failed"
[ $FAIL -eq 0 ]
