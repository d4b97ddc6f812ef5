#!/usr/bin/env bash
# A real third-party SIP client registers through the Edgeway edge.
#
# Starts `edgeway quickstart` in a scratch directory, onboards a demo phone
# with its activation code through the edge, and drives sipp (Debian
# package sip-tester, built without TLS) over TCP into a local stunnel that
# is the TLS client towards the edge and verifies the edge's certificate
# against the development CA. Checks:
#   - REGISTER with the bearer token from onboarding  -> 200 OK with Path
#   - REGISTER without credentials, with a forged token -> 401 + Bearer challenge
# Needs: go, sipp, stunnel4 (bash .ci/run installs them). Uses loopback only:
# the quickstart ports 8443, 5061 (127.0.0.1), 8443, 5090, 5091 (127.0.0.2),
# and 25061 for stunnel.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
stunnel=$(command -v stunnel4 || command -v stunnel || true)
for need in go sipp; do
  command -v "$need" >/dev/null || { echo "sipp-check: $need not found (apt-get install sip-tester stunnel4)" >&2; exit 1; }
done
[ -n "$stunnel" ] || { echo "sipp-check: stunnel not found (apt-get install stunnel4)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${keep:-}" != 1 ]; then rm -rf "$work"; else echo "sipp-check: kept $work" >&2; fi
}
trap cleanup EXIT

step() { printf 'sipp-check: %s\n' "$*"; }
fail() { printf 'sipp-check: FAIL: %s\n' "$*" >&2; keep=1; exit 1; }

step "building edgeway"
(cd "$top" && go build -o "$work/edgeway" ./cmd/edgeway)

for port in 127.0.0.1/5061 127.0.0.1/8443 127.0.0.2/8443 127.0.0.2/5091; do
  if (exec 3<>/dev/tcp/$port) 2>/dev/null; then
    fail "something already listens on $port (another quickstart?); stop it first"
  fi
done

step "starting quickstart in $work/data"
"$work/edgeway" quickstart --dir "$work/data" --log-level warn >"$work/quickstart.out" 2>"$work/quickstart.log" &
pids+=($!)
info="$work/data/quickstart.json"
for _ in $(seq 1 150); do
  if [ -s "$info" ] && (exec 3<>/dev/tcp/127.0.0.1/5061) 2>/dev/null; then break; fi
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/quickstart.log" >&2; fail "quickstart exited"; }
  sleep 0.2
done
(exec 3<>/dev/tcp/127.0.0.1/5061) 2>/dev/null || fail "edge SIP port 5061 never opened"
kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/quickstart.log" >&2; fail "quickstart exited"; }

step "onboarding SEP001122334401 through the edge with its activation code"
"$work/edgeway" onboard --quickstart "$info" --device SEP001122334401 --inf "$work/ok.rows" >/dev/null
token=$(sed -n 's/.*Authorization: Bearer //p' "$work/ok.rows")
[ -n "$token" ] || fail "no token from onboarding"
{ echo SEQUENTIAL; cat "$work/ok.rows"; } >"$work/ok.csv"
# A forged token: the same header and claims, the signature's last bytes changed.
forged="${token%????}AAAA"
[ "$forged" != "$token" ] || forged="${token%????}BBBB"
{
  echo SEQUENTIAL
  echo "1001;edgeway.test;X-No-Authorization: 1"
  echo "1001;edgeway.test;Authorization: Bearer $forged"
} >"$work/bad.csv"

step "starting stunnel (TLS client, verifies the edge against the dev CA)"
cat >"$work/stunnel.conf" <<CONF
foreground = yes
pid =
output = $work/stunnel.log
[edge-sip]
client = yes
accept = 127.0.0.1:25061
connect = 127.0.0.1:5061
CAfile = $work/data/pki/ca.pem
verifyChain = yes
checkIP = 127.0.0.1
sslVersionMin = TLSv1.2
CONF
"$stunnel" "$work/stunnel.conf" >"$work/stunnel.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/25061) 2>/dev/null && break; sleep 0.1; done

run_sipp() { # scenario csv calls
  (cd "$work" && sipp -sf "$here/$1" -inf "$work/$2" -t t1 -i 127.0.0.1 -p 0 -m "$3" -l 1 \
    -timeout 30s -timeout_error -recv_timeout 10000 -nostdin -trace_err -trace_msg \
    127.0.0.1:25061 >"$work/sipp-$1.out" 2>&1)
}

step "sipp REGISTER with the onboarding token (expect 200 OK + Path)"
run_sipp register-200.xml ok.csv 1 || { tail -n 40 "$work"/*messages.log "$work"/*errors.log 2>/dev/null; fail "REGISTER with a valid token did not get 200"; }
grep -q "^SIP/2.0 200" "$work"/register-200_*_messages.log || fail "no 200 OK in sipp's trace"
grep -qi "^Path: <sip:.*;lr;ob>" "$work"/register-200_*_messages.log || fail "200 OK without the edge's Path"

step "sipp REGISTER without a token and with a forged one (expect 401 + Bearer challenge)"
run_sipp register-401.xml bad.csv 2 || { tail -n 40 "$work"/*messages.log "$work"/*errors.log 2>/dev/null; fail "bad tokens did not get 401"; }
[ "$(grep -c "^SIP/2.0 401" "$work"/register-401_*_messages.log)" = 2 ] || fail "expected two 401 responses"

step "core lists the binding sipp made"
"$work/edgeway" admin --quickstart "$info" registrations | tee "$work/regs.txt"
grep -q "sip:1001@edgeway.test" "$work/regs.txt" || fail "binding for 1001 missing"
grep -q "expc.edgeway.test" "$work/regs.txt" || fail "binding did not come through the edge"

step "PASS: sipp registered through the edge over TLS with a bearer token; no/forged token got 401"
