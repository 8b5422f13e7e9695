#!/usr/bin/env bash
# The demo: record a live test pattern with ffmpeg and upload it to Frame.io C2C while it records.
#
#   make demo                          emulator (auto-approve), 20 s of 720p30 H.264 + AAC at 20 Mbit/s
#   FILE=clip.mov make demo            replay an existing file into the growing file at its own bitrate
#   DURATION=30 make demo              a longer recording
#   FRAMEIO_CLIENT_ID=... FRAMEIO_CLIENT_SECRET=... [FRAMEIO_BASE_URL=...] make demo
#                                      pair with the real service instead (no emulator; enter the code)
#
# Exits non-zero when anything fails, and (emulator) when the SHA-256 of the asset the server
# assembled differs from the recording's.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
CARGO="${CARGO:-cargo}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DURATION="${DURATION:-20}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fio-demo.XXXXXX")"
EMU_PID=""
cleanup() {
  if [ -n "$EMU_PID" ]; then kill "$EMU_PID" 2>/dev/null || true; wait "$EMU_PID" 2>/dev/null || true; fi
  if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "demo: files kept in $WORK"; fi
}
trap cleanup EXIT

say() { printf '\033[1m== %s\033[0m\n' "$*"; }

# 1. tools
if ! command -v ffmpeg >/dev/null 2>&1; then
  say "installing ffmpeg (scripts/setup.sh)"
  bash scripts/setup.sh
fi

# 2. build: the release library, the emulator, the demo program (C, against the public header)
say "building the library (release) and the emulator"
"$CARGO" build --release -p frameio-c2c
REAL=""
if [ -n "${FRAMEIO_CLIENT_ID:-}" ] && [ -n "${FRAMEIO_CLIENT_SECRET:-}" ]; then REAL=1; fi
if [ -z "$REAL" ]; then "$CARGO" build -p fio-emulator; fi
mkdir -p "$CARGO_TARGET_DIR/demo"
DEMO="$CARGO_TARGET_DIR/demo/c2c_demo"
${CC:-cc} -std=c11 -O2 -Wall -Wextra -Werror -I "${DEMO_INCLUDE:-include}" demo/c2c_demo.c \
  -L "$CARGO_TARGET_DIR/release" -lframeio_c2c -Wl,-rpath,"$CARGO_TARGET_DIR/release" -lpthread -ldl -lm -o "$DEMO"

# 3. the server
if [ -n "$REAL" ]; then
  BASE_URL="${FRAMEIO_BASE_URL:-https://api.frame.io}"
  CLIENT_ID="$FRAMEIO_CLIENT_ID"
  CLIENT_SECRET="$FRAMEIO_CLIENT_SECRET"
  HTTP_FLAG=""
  say "pairing with $BASE_URL (enter the code shown below in Frame.io)"
else
  say "starting the emulator (auto-approve)"
  "$CARGO_TARGET_DIR/debug/fio-emulator" --port 0 --s3-port 0 --data-dir "$WORK/emulator" --auto-approve \
    --poll-interval 0.5 --quiet >"$WORK/emulator.ready" 2>"$WORK/emulator.log" &
  EMU_PID=$!
  for _ in $(seq 1 100); do [ -s "$WORK/emulator.ready" ] && break; sleep 0.1; done
  BASE_URL="$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["api"])' "$WORK/emulator.ready")"
  CLIENT_ID="demo-camera-0001"
  CLIENT_SECRET="fio-emulator-secret"
  HTTP_FLAG="--allow-http"
  echo "emulator at $BASE_URL"
fi

# 4. record and upload
if [ -n "${FILE:-}" ]; then
  [ -f "$FILE" ] || { echo "demo: FILE=$FILE not found" >&2; exit 2; }
  ext="${FILE##*.}"; ext="$(printf '%s' "$ext" | tr 'A-Z' 'a-z')"
  case "$ext" in
    mov) FILETYPE=video/quicktime ;; mp4|m4v) FILETYPE=video/mp4 ;; mxf) FILETYPE=application/mxf ;;
    wav) FILETYPE=audio/wav ;; mp3) FILETYPE=audio/mpeg ;; *) FILETYPE=application/octet-stream ;;
  esac
  OUT="$WORK/$(basename "$FILE")"
  SIZE="$(stat -c %s "$FILE")"
  DUR="$(ffprobe -v error -show_entries format=duration -of default=nw=1:nk=1 "$FILE" 2>/dev/null || true)"
  RATE="$(python3 -c 'import sys; s=int(sys.argv[1]); d=sys.argv[2]
try: d=float(d)
except ValueError: d=0
print(int(s/d) if d>0 else 2500000)' "$SIZE" "${DUR:-}")"
  say "replaying $FILE ($SIZE bytes) at its own bitrate ($((RATE * 8 / 1000000)) Mbit/s)"
  "$DEMO" --base-url "$BASE_URL" --client-id "$CLIENT_ID" --client-secret "$CLIENT_SECRET" $HTTP_FLAG \
    --out "$OUT" --filetype "$FILETYPE" --replay "$FILE" --rate "$RATE" | tee "$WORK/demo.out" | grep --line-buffered -v "^[A-Z_]*="
else
  OUT="$WORK/C2C_DEMO_$(date -u +%Y%m%d_%H%M%S).mp4"
  # Fragmented MP4 written to a pipe: the file only ever grows (no seeking back to rewrite headers).
  REC="ffmpeg -hide_banner -loglevel error -nostdin -re \
    -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 -t $DURATION \
    -c:v libx264 -preset ultrafast -tune zerolatency -b:v 20M -minrate 20M -maxrate 20M -bufsize 10M \
    -x264-params nal-hrd=cbr -pix_fmt yuv420p -g 30 -c:a aac -b:a 128k \
    -f mp4 -movflags frag_keyframe+empty_moov+default_base_moof pipe:1"
  say "recording ${DURATION} s of 720p30 H.264 + AAC at 20 Mbit/s with ffmpeg, uploading as it grows"
  "$DEMO" --base-url "$BASE_URL" --client-id "$CLIENT_ID" --client-secret "$CLIENT_SECRET" $HTTP_FLAG \
    --out "$OUT" --filetype video/mp4 --record-cmd "$REC" | tee "$WORK/demo.out" | grep --line-buffered -v "^[A-Z_]*="
fi

# 5. check the bytes
ASSET_ID="$(sed -n 's/^ASSET_ID=//p' "$WORK/demo.out")"
LOCAL_SHA="$(sha256sum "$OUT" | cut -d' ' -f1)"
if [ -n "$REAL" ]; then
  echo "local SHA-256 $LOCAL_SHA (the real service does not report it; compare the download in Frame.io)"
  exit 0
fi
REMOTE_SHA="$(python3 -c 'import json,sys,urllib.request
a=json.load(urllib.request.urlopen(sys.argv[1]+"/_emulator/assets/"+sys.argv[2]))
print(a.get("state"), a.get("sha256"))' "$BASE_URL" "$ASSET_ID")"
STATE="${REMOTE_SHA%% *}"; REMOTE_SHA="${REMOTE_SHA#* }"
echo "  asset state           $STATE"
echo "  SHA-256 recording     $LOCAL_SHA"
echo "  SHA-256 server        $REMOTE_SHA"
if [ "$STATE" = "uploaded" ] && [ "$LOCAL_SHA" = "$REMOTE_SHA" ]; then
  say "OK: the asset is byte-identical to the recording"
else
  say "MISMATCH: the asset differs from the recording" >&2
  exit 1
fi
