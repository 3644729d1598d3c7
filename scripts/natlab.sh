#!/usr/bin/env bash
# A NAT lab in Linux network namespaces (root only): a fake internet, three home routers,
# their LANs, coturn and a Shoal signaling server. The suite (test/nat/) builds the same
# lab through the `net`, `nat`, `rebind` and `down` subcommands.
#
#   scripts/natlab.sh up [ID]      namespaces + coturn + signal server; prints member commands
#   scripts/natlab.sh down [ID]    stops what `up` started (by PID) and removes the namespaces
#   scripts/natlab.sh net ID [PID] namespaces, links, addresses and NAT rules only (PID: owner)
#   scripts/natlab.sh nat ID N cone|symmetric   switches router N's NAT kind
#   scripts/natlab.sh rebind ID N  moves router N's mappings to other ports and forgets the old ones
#   scripts/natlab.sh stale        removes the labs of suite runs whose process is gone
#   scripts/natlab.sh coturn-conf ID   prints the lab's coturn configuration
#
# ID is a number (default 1); namespaces are named sn<ID>-pub, sn<ID>-r1..r3, sn<ID>-h1..h4.
#
#   fake internet 198.18.0.0/24 (bridge in sn<ID>-pub, 198.18.0.1: coturn :3478, signal :7000)
#     ├── r1 wan 198.18.0.11 ── LAN 10.0.1.0/24: h1 10.0.1.2, h4 10.0.1.3
#     ├── r2 wan 198.18.0.12 ── LAN 10.0.2.0/24: h2 10.0.2.2
#     └── r3 wan 198.18.0.13 ── LAN 10.0.3.0/24: h3 10.0.3.2
#   management links (root namespace ↔ pub and each host, 10.254.S.0/24 split in /30s) carry
#   only the REST calls of the test or of a person; werift skips veth* interfaces, so they
#   never become ICE candidates. No namespace has a route out of the machine.
set -eu
cd "$(dirname "$0")/.."

cmd="${1:-}"
id="${2:-1}"
case "$id" in '' | *[!0-9]*)
  echo "natlab: ID must be a number" >&2
  exit 2
  ;;
esac
P="sn${id}-"
S=$((id % 250 + 1)) # management subnet 10.254.S.0/24
STATE="/tmp/shoal-natlab-${id}"
TURN_USER=shoal
TURN_PASS=natlab-pass
SECRET=natlab-secret
TOKEN=natlab-token

need() {
  [ "$(id -u)" -eq 0 ] || {
    echo "natlab: needs root (network namespaces)" >&2
    exit 3
  }
  for t in ip iptables conntrack turnserver; do
    command -v "$t" >/dev/null 2>&1 || {
      echo "natlab: $t missing (apt-get install iproute2 iptables conntrack coturn)" >&2
      exit 3
    }
  done
}

mgmt_addr() { echo "10.254.${S}.$((4 * $1 + 2))"; } # 0 = pub, N = hN

# Management link between the root namespace and namespace $1 (index $2).
mgmt() {
  local ns="$1" i="$2"
  local root="sn${id}m${i}"
  ip link add "$root" type veth peer name vethmgmt netns "$ns"
  ip addr add "10.254.${S}.$((4 * i + 1))/30" dev "$root"
  ip link set "$root" up
  ip -n "$ns" addr add "10.254.${S}.$((4 * i + 2))/30" dev vethmgmt
  ip -n "$ns" link set vethmgmt up
}

newns() {
  ip netns add "$1"
  ip -n "$1" link set lo up
}

host() { # host() NS ROUTER_INDEX ADDR MGMT_INDEX
  local ns="$1" r="$2" addr="$3"
  newns "$ns"
  ip -n "${P}r$r" link add "lan-$4" type veth peer name veth0 netns "$ns"
  ip -n "${P}r$r" link set "lan-$4" master lan up
  ip -n "$ns" addr add "$addr/24" dev veth0
  ip -n "$ns" link set veth0 up
  ip -n "$ns" route add default via "10.0.$r.1"
  mgmt "$ns" "$4"
}

set_nat() { # set_nat N cone|symmetric
  local ns="${P}r$1" extra=""
  [ "$2" = symmetric ] && extra="--random-fully"
  ip netns exec "$ns" iptables -t nat -F POSTROUTING
  # shellcheck disable=SC2086
  ip netns exec "$ns" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE $extra
  ip netns exec "$ns" conntrack -F >/dev/null 2>&1 || true
}

net_up() {
  need
  newns "${P}pub"
  ip -n "${P}pub" link add br0 type bridge
  ip -n "${P}pub" addr add 198.18.0.1/24 dev br0
  ip -n "${P}pub" link set br0 up
  mgmt "${P}pub" 0
  for r in 1 2 3; do
    local ns="${P}r$r"
    newns "$ns"
    ip -n "${P}pub" link add "wan$r" type veth peer name wan netns "$ns"
    ip -n "${P}pub" link set "wan$r" master br0 up
    ip -n "$ns" addr add "198.18.0.$((10 + r))/24" dev wan
    ip -n "$ns" link set wan up
    ip -n "$ns" link add lan type bridge
    ip -n "$ns" addr add "10.0.$r.1/24" dev lan
    ip -n "$ns" link set lan up
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
    # The usual home router: outgoing connections are masqueraded, unsolicited WAN traffic dropped.
    for chain in INPUT FORWARD; do
      ip netns exec "$ns" iptables -A "$chain" -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
      ip netns exec "$ns" iptables -A "$chain" -i wan -j DROP
    done
    set_nat "$r" cone
  done
  host "${P}h1" 1 10.0.1.2 1
  host "${P}h2" 2 10.0.2.2 2
  host "${P}h3" 3 10.0.3.2 3
  host "${P}h4" 1 10.0.1.3 4
}

net_down() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${P}" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}

coturn_conf() {
  cat <<EOF
listening-ip=198.18.0.1
relay-ip=198.18.0.1
listening-port=3478
min-port=49160
max-port=49200
lt-cred-mech
user=${TURN_USER}:${TURN_PASS}
realm=natlab.shoal
fingerprint
no-tls
no-dtls
no-cli
no-multicast-peers
denied-peer-ip=0.0.0.0-0.255.255.255
denied-peer-ip=10.0.0.0-10.255.255.255
denied-peer-ip=100.64.0.0-100.127.255.255
denied-peer-ip=127.0.0.0-127.255.255.255
denied-peer-ip=169.254.0.0-169.254.255.255
denied-peer-ip=172.16.0.0-172.31.255.255
denied-peer-ip=192.168.0.0-192.168.255.255
userdb=${STATE}/turndb
pidfile=${STATE}/turnserver.pid
log-file=stdout
simple-log
EOF
}

case "$cmd" in
net)
  # The suite passes its own PID: `stale` removes the lab once that process is gone.
  need
  net_down
  mkdir -p "$STATE"
  echo "${3:-manual}" >"$STATE/owner"
  net_up
  ;;
nat)
  need
  set_nat "$3" "$4"
  ;;
rebind)
  need
  # New mappings take ports from another range; the old ones are forgotten, so the peers'
  # packets to the old ports are dropped as unsolicited, as after a home router reboot.
  ns="${P}r$3"
  ip netns exec "$ns" iptables -t nat -F POSTROUTING
  ip netns exec "$ns" iptables -t nat -A POSTROUTING -o wan -p udp -j MASQUERADE --to-ports 30000-30999
  ip netns exec "$ns" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
  ip netns exec "$ns" conntrack -F >/dev/null 2>&1 || true
  ;;
coturn-conf) coturn_conf ;;
stale)
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^sn[0-9]+-' || true); do
    lab="${ns#sn}"
    lab="${lab%%-*}"
    owner=$(cat "/tmp/shoal-natlab-${lab}/owner" 2>/dev/null || echo gone)
    [ "$owner" = manual ] && continue
    if [ "$owner" = gone ] || ! kill -0 "$owner" 2>/dev/null; then
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true
      rm -rf "/tmp/shoal-natlab-${lab}"
    fi
  done
  ;;
up)
  need
  net_down
  mkdir -p "$STATE"
  echo manual >"$STATE/owner"
  net_up
  coturn_conf >"$STATE/turnserver.conf"
  ip netns exec "${P}pub" turnserver -c "$STATE/turnserver.conf" >"$STATE/turnserver.log" 2>&1 &
  echo $! >"$STATE/coturn.pid"
  ip netns exec "${P}pub" node_modules/.bin/bun run mod.ts signal --http 198.18.0.1:7000 >"$STATE/signal.log" 2>&1 &
  echo $! >"$STATE/signal.pid"
  sleep 1
  cat <<EOF
NAT lab ${id} is up (coturn pid $(cat "$STATE/coturn.pid"), signal pid $(cat "$STATE/signal.pid"); logs in $STATE).
Routers r1..r3 are port-restricted cone NATs; make r2 symmetric with: $0 nat ${id} 2 symmetric
Start a member per host (each in its own terminal), e.g.:
  ip netns exec ${P}h1 node_modules/.bin/bun run mod.ts --name h1 --secret ${SECRET} --token ${TOKEN} \\
    --join http://198.18.0.1:7000 --http $(mgmt_addr 1):5701 --ice-host-address 10.0.1.2 \\
    --ice stun:198.18.0.1:3478 --ice turn:${TURN_USER}:${TURN_PASS}@198.18.0.1:3478
  ip netns exec ${P}h2 node_modules/.bin/deno run -A mod.ts --name h2 --secret ${SECRET} --token ${TOKEN} \\
    --join http://198.18.0.1:7000 --http $(mgmt_addr 2):5701 --ice-host-address 10.0.2.2 \\
    --ice stun:198.18.0.1:3478
Then, from this shell:  curl -s http://$(mgmt_addr 1):5701/cluster | jq .links
Stop everything with: $0 down ${id}
EOF
  ;;
down)
  for f in "$STATE"/*.pid; do
    [ -e "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
  done
  net_down
  rm -rf "$STATE"
  ;;
*)
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
  exit 2
  ;;
esac
