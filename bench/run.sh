#!/usr/bin/env bash
# `make bench` / `make bench-quick`: installs what the benchmarks need (Debian packages), builds the release
# library and the emulator, then runs bench/run.py, which writes bench/RESULTS.md.
# Needs root (apt-get, network namespace, tc, iptables). Not part of `make test` or CI.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

need=()
command -v nginx    >/dev/null 2>&1 || need+=(nginx-light)
command -v curl     >/dev/null 2>&1 || need+=(curl)
command -v gcc      >/dev/null 2>&1 || need+=(gcc)
command -v openssl  >/dev/null 2>&1 || need+=(openssl)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v ethtool  >/dev/null 2>&1 || need+=(ethtool)
command -v tc       >/dev/null 2>&1 || need+=(iproute2)
command -v strip    >/dev/null 2>&1 || need+=(binutils)
[ -f /usr/include/libnetfilter_queue/libnetfilter_queue.h ] || need+=(libnetfilter-queue-dev)
[ -f /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -f /usr/include/curl/curl.h ] || need+=(libcurl4-openssl-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # the nginx package starts a system service on :80; the benchmarks run their own instance
  if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true; fi
fi
python3 -c 'import requests' 2>/dev/null || python3 -m pip install -q requests

CARGO=${CARGO:-cargo}
echo "bench: building the release library and the emulator"
$CARGO build --release -p frameio-c2c || echo "bench: WARNING: the release library did not build; sections that need it will say so"
$CARGO build --release -p fio-emulator || echo "bench: WARNING: the emulator did not build; sections that need it will say so"

# Measured processes (and the sinks, the emulator, the link) run at a higher priority than a compile that may
# share the machine, so that others' work disturbs the ratios less. Same priority for us and for every peer.
if [ "$(id -u)" -eq 0 ]; then
  export FIO_BENCH_NICE=-10
  exec nice -n -10 python3 bench/run.py "$@"
fi
exec python3 bench/run.py "$@"
