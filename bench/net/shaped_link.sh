#!/usr/bin/env bash
# A shaped link for the benchmarks: a network namespace of our own joined to the root namespace by a veth
# pair, with `tbf` for the rate (both directions) and fio_netem (NFQUEUE, userspace) for delay and loss,
# because this kernel has no sch_netem.
#
#   bench/net/shaped_link.sh up   [RATE_MBIT] [ONE_WAY_DELAY_MS] [LOSS_FRACTION]   (defaults 100 20 0.001)
#   bench/net/shaped_link.sh down
#   bench/net/shaped_link.sh exec CMD...        run CMD inside the namespace
#
# Addresses: root side 10.231.0.1, namespace side 10.231.0.2 (/30). Servers that should sit "across the
# link" run inside the namespace and listen on 10.231.0.2; clients run in the root namespace.
# Only addresses inside this namespace receive test traffic.
set -euo pipefail
NS=${FIO_BENCH_NS:-fiobench}
HOST_IF=fbh0
NS_IF=fbn0
HOST_IP=10.231.0.1
NS_IP=10.231.0.2
HERE=$(cd "$(dirname "$0")" && pwd)
STATE=${FIO_BENCH_STATE:-/tmp/fio-bench-net}
NETEM_BIN=${FIO_NETEM_BIN:-$STATE/fio_netem}

build_netem() {
  mkdir -p "$STATE"
  if [ ! -x "$NETEM_BIN" ] || [ "$HERE/fio_netem.c" -nt "$NETEM_BIN" ]; then
    gcc -O2 -Wall -Wextra -o "$NETEM_BIN" "$HERE/fio_netem.c" -lnetfilter_queue -lnfnetlink
  fi
}

down() {
  if [ -f "$STATE/netem.pid" ]; then
    pid=$(cat "$STATE/netem.pid")
    kill "$pid" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$STATE/netem.pid"
  fi
  ip link del "$HOST_IF" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
}

up() {
  local rate=${1:-100} delay=${2:-20} loss=${3:-0.001}
  build_netem
  down
  ip netns add "$NS"
  ip link add "$HOST_IF" type veth peer name "$NS_IF"
  ip link set "$NS_IF" netns "$NS"
  ip addr add "$HOST_IP/30" dev "$HOST_IF"
  ip link set "$HOST_IF" up
  ip netns exec "$NS" ip addr add "$NS_IP/30" dev "$NS_IF"
  ip netns exec "$NS" ip link set "$NS_IF" up
  ip netns exec "$NS" ip link set lo up
  # MTU-sized packets, as on a real path: no offload super-packets (loss is drawn per packet)
  ethtool -K "$HOST_IF" tso off gso off gro off >/dev/null 2>&1 || true
  ip netns exec "$NS" ethtool -K "$NS_IF" tso off gso off gro off >/dev/null 2>&1 || true
  # rate in both directions; the queue holds ~20 ms at the rate (a modest bottleneck buffer)
  tc qdisc add dev "$HOST_IF" root tbf rate "${rate}mbit" burst 16kb latency 20ms
  ip netns exec "$NS" tc qdisc add dev "$NS_IF" root tbf rate "${rate}mbit" burst 16kb latency 20ms
  # delay and loss: every TCP packet crossing the namespace's end of the link, both ways
  ip netns exec "$NS" iptables -t mangle -A PREROUTING -i "$NS_IF" -p tcp -j NFQUEUE --queue-num 0
  ip netns exec "$NS" iptables -t mangle -A POSTROUTING -o "$NS_IF" -p tcp -j NFQUEUE --queue-num 0
  ip netns exec "$NS" "$NETEM_BIN" --queue 0 --delay-ms "$delay" --loss "$loss" --max-seconds 7200 \
    >"$STATE/netem.log" 2>&1 &
  echo $! >"$STATE/netem.pid"
  sleep 0.3
  if ! kill -0 "$(cat "$STATE/netem.pid")" 2>/dev/null; then
    cat "$STATE/netem.log" >&2
    down
    echo "shaped_link: fio_netem failed to start" >&2
    exit 1
  fi
  echo "shaped_link: up: ${rate} Mbit/s each way, ${delay} ms each way (RTT $((2 * delay)) ms), loss $loss per packet each way; server side $NS_IP in netns $NS"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down; echo "shaped_link: down" ;;
  exec) shift; exec ip netns exec "$NS" "$@" ;;
  *) echo "usage: $0 up [RATE_MBIT] [DELAY_MS] [LOSS] | down | exec CMD..." >&2; exit 2 ;;
esac
