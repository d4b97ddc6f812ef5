#!/usr/bin/env bash
# Every TLS port of a fresh quickstart, as testssl.sh sees it (issue 9 item 8).
#
# Starts `edgeway quickstart` in a scratch directory, reads its TLS ports
# from quickstart.json (edge HTTPS 8443, edge SIP 5061, TURN over TLS 5349,
# core HTTPS 8443, config 6971, Phone OAuth 5090, MRA 5091), runs Debian's
# testssl.sh against each (protocols -p, ciphers per protocol -E, the
# vulnerability checks -U) and fails when testssl rates anything VULNERABLE,
# when SSLv2, SSLv3, TLS 1.0 or 1.1 is offered, or when any offered cipher
# suite is not AEAD (a CBC suite: LUCKY13; RC4; 3DES; NULL). Prints a short
# table per port.
#
# Traffic stays on loopback: the targets are 127.0.0.x literals, testssl runs
# with --nodns none and without --phone-out (no OCSP or CRL fetches), and,
# when run as root with unshare(1), the whole check runs in a network
# namespace of its own that has nothing but lo.
#
# Needs: go, testssl.sh (apt-get install testssl.sh), timeout, awk.
# Bounded: each port's scan is cut off after $TESTSSL_PORT_TIMEOUT seconds
# (default 600; a cut-off scan fails the check), $TESTSSL_JOBS ports are
# scanned at once (default 4). testssl's own start-up dominates on a busy
# machine.
# Usage: bench/security/testssl.sh   (keep=1 keeps the scratch directory;
#        TESTSSL_ONLY=edge_https,core_mra scans only those quickstart.json keys)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

# Own network namespace with only loopback, when we can have one.
if [ -z "${EDGEWAY_TESTSSL_NETNS:-}" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v ip >/dev/null; then
  export EDGEWAY_TESTSSL_NETNS=1
  # shellcheck disable=SC2016
  exec unshare -n -- bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi

testssl=$(command -v testssl || command -v testssl.sh || true)
[ -n "$testssl" ] || { echo "testssl-check: testssl.sh not found (apt-get install testssl.sh)" >&2; exit 1; }
command -v go >/dev/null || { echo "testssl-check: go not found" >&2; exit 1; }

port_timeout=${TESTSSL_PORT_TIMEOUT:-600}
jobs=${TESTSSL_JOBS:-4}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${keep:-}" != 1 ]; then rm -rf "$work"; else echo "testssl-check: kept $work" >&2; fi
}
trap cleanup EXIT

step() { printf 'testssl-check: %s\n' "$*"; }
fail() { printf 'testssl-check: FAIL: %s\n' "$*" >&2; keep=1; exit 1; }
started=$(date +%s)

step "building edgeway"
(cd "$top" && go build -o "$work/edgeway" ./cmd/edgeway)

for port in 127.0.0.1/5061 127.0.0.1/8443 127.0.0.1/5349 127.0.0.2/8443 127.0.0.2/5091; do
  if (exec 3<>/dev/tcp/$port) 2>/dev/null; then
    fail "something already listens on $port (another quickstart?); stop it first"
  fi
done

step "starting quickstart in $work/data"
"$work/edgeway" quickstart --dir "$work/data" --log-level warn >"$work/quickstart.out" 2>"$work/quickstart.log" &
qs=$!
pids+=("$qs")
info="$work/data/quickstart.json"
for _ in $(seq 1 300); do
  if [ -s "$info" ] && (exec 3<>/dev/tcp/127.0.0.1/5061) 2>/dev/null; then break; fi
  kill -0 "$qs" 2>/dev/null || { cat "$work/quickstart.log" >&2; fail "quickstart exited"; }
  sleep 0.2
done
[ -s "$info" ] || fail "quickstart.json never appeared"

# host:port of every TLS service quickstart.json names (URLs lose https://).
targets=()
for key in edge_https edge_sip edge_turns core_https core_config core_phone_oauth core_mra; do
  v=$(sed -n "s/.*\"$key\": *\"\\([^\"]*\\)\".*/\\1/p" "$info" | head -n 1)
  v=${v#https://}
  v=${v%%/*}
  [ -n "$v" ] || continue
  if [ -n "${TESTSSL_ONLY:-}" ] && [[ ",$TESTSSL_ONLY," != *",$key,"* ]]; then continue; fi
  targets+=("$key=$v")
done
[ -n "${TESTSSL_ONLY:-}" ] || [ "${#targets[@]}" -ge 6 ] || fail "expected at least 6 TLS ports in $info, found: ${targets[*]}"
[ "${#targets[@]}" -ge 1 ] || fail "no TLS port selected (TESTSSL_ONLY=${TESTSSL_ONLY:-})"
for t in "${targets[@]}"; do
  hp=${t#*=}
  (exec 3<>/dev/tcp/${hp%:*}/${hp##*:}) 2>/dev/null || fail "${t%%=*} ($hp) is not listening"
done

scan() { # name host:port
  local name=$1 hp=$2 rc=0
  timeout --kill-after=10 "$port_timeout" "$testssl" --quiet --color 0 --warnings off --nodns none \
    --connect-timeout 10 --openssl-timeout 10 --csvfile "$work/$name.csv" \
    -p -E -U "$hp" >"$work/$name.txt" 2>&1 || rc=$?
  echo "$rc" >"$work/$name.rc"
}

step "scanning ${#targets[@]} ports with $testssl ($jobs at a time, at most ${port_timeout}s each)"
running=()
for t in "${targets[@]}"; do
  scan "${t%%=*}" "${t#*=}" &
  running+=($!)
  pids+=($!)
  if [ "${#running[@]}" -ge "$jobs" ]; then
    wait "${running[0]}" || true
    running=("${running[@]:1}")
  fi
done
for p in "${running[@]}"; do wait "$p" || true; done

# One row per port; the reasons for failing below it.
bad=0
printf '\n%-18s %-16s %-10s %-7s %-5s %s\n' PORT ADDRESS PROTOCOLS SUITES VULN RESULT
for t in "${targets[@]}"; do
  name=${t%%=*} hp=${t#*=}
  csv="$work/$name.csv" rc=$(cat "$work/$name.rc" 2>/dev/null || echo 1)
  problems=()
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    problems+=("testssl did not finish within ${port_timeout}s")
  elif [ ! -s "$csv" ]; then
    problems+=("testssl wrote no results (exit $rc): $(tail -n 3 "$work/$name.txt" | tr '\n' ' ')")
  fi
  protos="-" suites=0 vulns=0
  if [ -s "$csv" ]; then
    # CSV columns: "id","fqdn/ip","port","severity","finding","cve","cwe"
    protos=$(awk -F'","' '$1 ~ /^"(TLS1_2|TLS1_3)$/ && $5 ~ /^offered/ {sub(/^"/, "", $1); sub(/TLS1_/, "1.", $1); printf "%s%s", sep, $1; sep=","}' "$csv")
    while IFS= read -r p; do problems+=("$p offered"); done < <(
      awk -F'","' '$1 ~ /^"(SSLv2|SSLv3|TLS1|TLS1_1)$/ && $5 ~ /^offered/ {sub(/^"/, "", $1); print $1}' "$csv")
    suites=$(awk -F'","' '$1 ~ /^"cipher-tls/ {n++} END {print n+0}' "$csv")
    while IFS= read -r c; do problems+=("not AEAD: $c"); done < <(
      awk -F'","' '$1 ~ /^"cipher-/ && $5 !~ /(GCM|CHACHA20_POLY1305|CCM)/ {print $5}' "$csv")
    [ "$suites" -gt 0 ] || problems+=("no cipher suite found: the scan did not reach the server")
  fi
  # Any report line testssl rates VULNERABLE (including "potentially").
  while IFS= read -r l; do problems+=("$(echo "$l" | tr -s ' ')"); vulns=$((vulns + 1)); done < <(
    grep -E 'VULNERABLE' "$work/$name.txt" 2>/dev/null | grep -viE 'not vulnerable' || true)
  result=ok
  [ "${#problems[@]}" = 0 ] || { result=FAIL; bad=1; }
  printf '%-18s %-16s %-10s %-7s %-5s %s\n' "$name" "$hp" "${protos:--}" "$suites" "$vulns" "$result"
  for p in "${problems[@]}"; do printf '    %s\n' "$p"; done
done
echo
elapsed=$(($(date +%s) - started))
[ "$bad" = 0 ] || fail "see above; full reports in $work/*.txt (${elapsed}s)"
step "PASS: ${#targets[@]} TLS ports offer TLS 1.2/1.3 with AEAD suites only, nothing rated VULNERABLE (${elapsed}s)"
