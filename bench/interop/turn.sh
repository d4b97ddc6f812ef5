#!/usr/bin/env bash
# A real third-party TURN client relays through the Edgeway edge's TURN server
# with Edgeway-issued credentials (issue 4, acceptance 5, coturn part).
#
# Starts `edgeway quickstart` in a scratch directory, onboards a demo phone
# through the edge and takes the "turn" object {urls, username, credential,
# ttl} from the token response. Then coturn's turnutils_peer listens on
# 127.0.0.1:$peer_port (UDP) and turnutils_uclient allocates on the edge's
# TURN server and sends $msgs packets through the relay to that peer, which
# echoes them back. Checks:
#   - UDP (3478), TCP (3478, -t) and TLS (5349, -t -S): allocation succeeds,
#     every packet sent comes back (lost 0; loopback, so no loss tolerance)
#   - TLS: the edge's certificate on 5349 verifies against the dev CA
#     (with openssl s_client, when openssl is installed; turnutils_uclient's
#     -E does not refuse an unverifiable server, so it cannot show this)
#   - the same client with a forged credential (UDP and TCP) is refused
# Needs: go, coturn (turnutils_uclient, turnutils_peer). As root with CI=true
# the script installs coturn with apt-get. Uses loopback only: the quickstart
# ports 8443, 5061, 3478 (UDP+TCP), 5349 (127.0.0.1), 8443, 5090, 5091
# (127.0.0.2) and $peer_port (default 3480) for turnutils_peer.
# keep=1 keeps the scratch directory; it is also kept on failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
peer_port=${peer_port:-3480}
msgs=${msgs:-50}

step() { printf 'turn-check: %s\n' "$*"; }
die() { printf 'turn-check: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "go not found"
if ! command -v turnutils_uclient >/dev/null || ! command -v turnutils_peer >/dev/null; then
  if [ "$(id -u)" = 0 ] && [ "${CI:-}" = true ]; then
    step "installing coturn (CI)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y coturn >/dev/null
  else
    die "turnutils_uclient/turnutils_peer not found: install the Debian package coturn (apt-get install coturn)"
  fi
fi

# Debian's coturn package may start a system turnserver on 3478 on install.
if pgrep -x turnserver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && [ "${CI:-}" = true ]; then
    step "stopping the system turnserver the coturn package started (CI)"
    { systemctl stop coturn || service coturn stop || /etc/init.d/coturn stop; } >/dev/null 2>&1 || true
    for _ in $(seq 1 50); do pgrep -x turnserver >/dev/null 2>&1 || break; sleep 0.1; done
  fi
  pgrep -x turnserver >/dev/null 2>&1 &&
    die "a turnserver is running ($(pgrep -x turnserver | tr '\n' ' ')) and would clash with the edge's TURN on 3478/5349; stop it first (e.g. systemctl stop coturn)"
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${keep:-}" != 1 ]; then rm -rf "$work"; else echo "turn-check: kept $work" >&2; fi
}
trap cleanup EXIT

failed=0
pass() { printf 'turn-check: PASS: %s\n' "$*"; }
bad() { printf 'turn-check: FAIL: %s\n' "$*" >&2; failed=1; keep=1; }
fail() { printf 'turn-check: FAIL: %s\n' "$*" >&2; keep=1; exit 1; }

step "building edgeway"
(cd "$top" && go build -o "$work/edgeway" ./cmd/edgeway)

for port in 127.0.0.1/5061 127.0.0.1/8443 127.0.0.1/3478 127.0.0.1/5349 127.0.0.2/8443 127.0.0.2/5091; do
  if (exec 3<>/dev/tcp/$port) 2>/dev/null; then
    fail "something already listens on $port (another quickstart or turnserver?); stop it first"
  fi
done
if command -v ss >/dev/null; then
  # Only what would collide with 127.0.0.1: that address or a wildcard
  # (another loopback address, 127.x.y.z, is no conflict).
  ss -Hlun 2>/dev/null | awk '{print $4}' | grep -Eq "^(127\.0\.0\.1|0\.0\.0\.0|\*|\[::\]):(3478|$peer_port)\$" &&
    fail "UDP port 3478 or $peer_port is taken on 127.0.0.1 or a wildcard: $(ss -Hlunp 2>/dev/null | grep -E "(127\.0\.0\.1|0\.0\.0\.0|\*|\[::\]):(3478|$peer_port) " | tr -s ' ')"
fi

step "starting quickstart in $work/data"
"$work/edgeway" quickstart --dir "$work/data" --log-level warn >"$work/quickstart.out" 2>"$work/quickstart.log" &
pids+=($!)
info="$work/data/quickstart.json"
up() { [ -s "$info" ] && (exec 3<>/dev/tcp/127.0.0.1/8443) 2>/dev/null &&
  (exec 3<>/dev/tcp/127.0.0.1/3478) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/5349) 2>/dev/null; }
for _ in $(seq 1 150); do
  up && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/quickstart.log" >&2; fail "quickstart exited"; }
  sleep 0.2
done
up || { cat "$work/quickstart.log" >&2; fail "edge ports 8443/3478/5349 never opened"; }

step "onboarding SEP001122334401 through the edge with its activation code"
timeout 30 "$work/edgeway" onboard --quickstart "$info" --device SEP001122334401 >"$work/token.json" ||
  fail "onboarding failed"
turn=$(sed -n 's/.*"turn":{\([^}]*\)}.*/\1/p' "$work/token.json")
[ -n "$turn" ] || fail "token response has no \"turn\" object: $(head -c 300 "$work/token.json")"
field() { printf '%s' "$turn" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
user=$(field username)
cred=$(field credential)
ttl=$(printf '%s' "$turn" | sed -n 's/.*"ttl":\([0-9]*\).*/\1/p')
urls=$(printf '%s' "$turn" | sed -n 's/.*"urls":\[\([^]]*\)\].*/\1/p')
[ -n "$user" ] && [ -n "$cred" ] || fail "no TURN username/credential in the token response"
case "$user$cred" in *\\*) fail "escaped characters in TURN credentials; cannot parse without a JSON parser" ;; esac
step "TURN credentials: username=$user ttl=${ttl:-?} urls=$urls"
printf '%s' "$urls" | grep -q 'turn:127.0.0.1:3478?transport=udp' || bad "urls lack turn:127.0.0.1:3478?transport=udp"
printf '%s' "$urls" | grep -q 'turn:127.0.0.1:3478?transport=tcp' || bad "urls lack turn:127.0.0.1:3478?transport=tcp"
printf '%s' "$urls" | grep -q 'turns:127.0.0.1:5349' || bad "urls lack turns:127.0.0.1:5349"

step "starting turnutils_peer on 127.0.0.1:$peer_port"
turnutils_peer -L 127.0.0.1 -p "$peer_port" >"$work/peer.log" 2>&1 &
pids+=($!)
sleep 0.5
kill -0 "${pids[1]}" 2>/dev/null || { cat "$work/peer.log" >&2; fail "turnutils_peer exited (port $peer_port taken? set peer_port=...)"; }

# uclient <name> <password> <uclient flags...>: one client (-m 1), no RTCP
# allocation (-c), $msgs packets of 160 bytes (G.711 20 ms) every 20 ms to the
# peer through the relay. Output in $work/uclient-<name>.out.
uclient() {
  local name=$1 pw=$2
  shift 2
  timeout 60 turnutils_uclient "$@" -m 1 -c -n "$msgs" -l 160 -z 20 \
    -e 127.0.0.1 -r "$peer_port" -u "$user" -w "$pw" 127.0.0.1 >"$work/uclient-$name.out" 2>&1
}

check_relay() { # name, flags...
  local name=$1 rc=0 sent recv lost out
  shift
  out="$work/uclient-$name.out"
  uclient "$name" "$cred" "$@" || rc=$?
  sent=$(sed -n 's/.*start_mclient: tot_send_msgs=\([0-9]*\), tot_recv_msgs=\([0-9]*\)$/\1/p' "$out" | tail -n1)
  recv=$(sed -n 's/.*start_mclient: tot_send_msgs=\([0-9]*\), tot_recv_msgs=\([0-9]*\)$/\2/p' "$out" | tail -n1)
  lost=$(sed -n 's/.*Total lost packets \([0-9]*\) .*/\1/p' "$out" | tail -n1)
  if [ "$rc" = 0 ] && [ "$sent" = "$msgs" ] && [ "$recv" = "$msgs" ] && [ "$lost" = 0 ] &&
    ! grep -q 'ERROR' "$out"; then
    pass "turnutils_uclient $name ($*): sent $sent, received $recv, lost $lost through the relay to turnutils_peer"
  else
    tail -n 15 "$out" >&2
    bad "turnutils_uclient $name ($*): exit $rc, sent ${sent:-?}/$msgs, received ${recv:-?}, lost ${lost:-?}"
  fi
}

check_refused() { # name, flags...
  local name=$1 rc=0 out
  shift
  out="$work/uclient-$name.out"
  uclient "$name" "$forged" "$@" || rc=$?
  if [ "$rc" != 0 ] && grep -q 'Cannot complete Allocation' "$out" && ! grep -q 'Total lost packets' "$out"; then
    pass "turnutils_uclient $name ($*) with a forged credential: allocation refused (exit $rc)"
  else
    tail -n 15 "$out" >&2
    bad "turnutils_uclient $name ($*) with a forged credential: exit $rc, allocation not refused"
  fi
}

check_relay udp -p 3478
check_relay tcp -t -p 3478
check_relay tls -t -S -p 5349 -E "$work/data/pki/ca.pem"

if command -v openssl >/dev/null; then
  if timeout 15 openssl s_client -connect 127.0.0.1:5349 -CAfile "$work/data/pki/ca.pem" \
    -verify_return_error -verify_ip 127.0.0.1 </dev/null >"$work/s_client.out" 2>&1 &&
    grep -q 'Verify return code: 0 (ok)' "$work/s_client.out"; then
    pass "TURN over TLS on 5349 presents a certificate that verifies against the dev CA for 127.0.0.1"
  else
    tail -n 15 "$work/s_client.out" >&2
    bad "TURN over TLS on 5349: certificate does not verify against the dev CA for 127.0.0.1"
  fi
else
  step "openssl not installed: skipping the TLS certificate verification check"
fi

# A forged credential: the right username, the HMAC's first bytes changed.
forged="AAAA${cred#????}"
[ "$forged" != "$cred" ] || forged="BBBB${cred#????}"
check_refused forged-udp -p 3478
check_refused forged-tcp -t -p 3478

kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/quickstart.log" >&2; bad "quickstart died during the checks"; }

if [ "$failed" = 0 ]; then
  step "PASS: coturn's turnutils_uclient relayed through the edge's TURN over UDP, TCP and TLS with Edgeway-issued credentials; a forged credential was refused"
else
  step "FAIL: see the FAIL lines above"
  exit 1
fi
