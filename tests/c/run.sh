#!/usr/bin/env bash
# Run a command against a freshly started fio-emulator:
#   tests/c/run.sh [--emu-arg ARG]... -- COMMAND [ARGS...]
# Exports FIO_TEST_API / FIO_TEST_S3 (and FIO_BASE_URL, FIO_CLIENT_SECRET, FIO_ALLOW_HTTP for the
# examples), runs the command, kills the emulator, and exits with the command's status.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
emu="${FIO_EMULATOR_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/fio-emulator}"
emu_args=(--poll-interval 0.2)
while [[ $# -gt 0 && "$1" != "--" ]]; do
    case "$1" in
        --emu-arg) emu_args+=("$2"); shift 2 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ "${1:-}" == "--" ]] && shift
[[ -x "$emu" ]] || { echo "run.sh: $emu not found (cargo build -p fio-emulator)" >&2; exit 2; }

work="$(mktemp -d /tmp/fio-ctest.XXXXXX)"
fifo="$work/ready"
mkfifo "$fifo"
"$emu" --port 0 --s3-port 0 --quiet --data-dir "$work/data" "${emu_args[@]}" >"$fifo" 2>"$work/emulator.log" &
emu_pid=$!
cleanup() {
    kill "$emu_pid" 2>/dev/null || true
    wait "$emu_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
exec 3<"$fifo"
read -r -t 30 ready <&3 || { echo "run.sh: emulator did not start" >&2; cat "$work/emulator.log" >&2; exit 1; }
# Keep draining the emulator's stdout.
cat <&3 >/dev/null &
api="$(sed -E 's/.*"api": *"([^"]+)".*/\1/' <<<"$ready")"
s3="$(sed -E 's/.*"s3": *"([^"]+)".*/\1/' <<<"$ready")"
ca="$(sed -nE 's/.*"ca_cert": *"([^"]+)".*/\1/p' <<<"$ready")"
export FIO_TEST_API="$api" FIO_TEST_S3="$s3"
if [[ -n "$ca" ]]; then export FIO_CA_PEM="$ca" FIO_TEST_CA="$ca"; fi
export FIO_BASE_URL="$api" FIO_CLIENT_SECRET="fio-emulator-secret"
if [[ "$api" == http://* ]]; then export FIO_ALLOW_HTTP=1; else unset FIO_ALLOW_HTTP; fi
set +e
"$@"
status=$?
set -e
exit $status
