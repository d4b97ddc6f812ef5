# deploy/netns/e2e.sh: the e2e test and the bench of deploy/netns/run
# (sourced by it: uses its names, in_ns, admin, start_* and die).

fails=0
check() { # check WHAT COMMAND...: one assertion, logged
	local what=$1
	shift
	if "$@"; then
		log "ok   $what"
	else
		log "FAIL $what"
		fails=$((fails + 1))
	fi
}

# connects NS ADDR PORT: a TCP connection from NS to ADDR:PORT is
# established within 2 s.
connects() { in_ns "$1" timeout 2 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null; }
refused() { ! connects "$@"; }

counter_packets() { in_ns $NS_R nft list counter inet edgeway "$1" | awk '/packets/ { print $2 }'; }
dropped_count() { counter_packets dropped; }

# --- firewall -----------------------------------------------------------------
test_firewall() {
	log "firewall: every refused connection has a positive control (the port is open from where it is allowed)"
	# A listener in outside, so that "the inside cannot reach outside" is not
	# merely "nothing listens there".
	nsenter --net=/run/netns/$NS_OUT -- openssl s_server -quiet -accept "$PHONE_IP:9000" -cert "$WORK/pki/edge-public.pem" \
		-key "$WORK/pki/edge-public-key.pem" >/dev/null 2>&1 9>&- &
	local listener=$!
	pids+=($listener)
	wait_tcp $NS_OUT $PHONE_IP 9000 "test listener" 10
	local before after port core specs=()
	before=$(dropped_count)
	# WHAT|connects-or-refused|NS|ADDR|PORT; run at once (a refusal waits out its 2 s).
	specs+=("outside -> edge-1 8443 (phones' onboarding port)|connects|$NS_OUT|$EDGE1|8443")
	specs+=("outside -> edge-2 5061 (phones' SIP/TLS port)|connects|$NS_OUT|$EDGE2|5061")
	specs+=("outside -> edge-1 5349 (TURN over TLS)|connects|$NS_OUT|$EDGE1|5349")
	for core in $CORE1 $CORE2 $CORE3; do
		for port in 5091 8443 6971 5090; do
			specs+=("control: inside -> core $core:$port|connects|$NS_IN|$core|$port")
			specs+=("outside -> core $core:$port|refused|$NS_OUT|$core|$port")
		done
	done
	for port in 5091 8443 6971; do
		specs+=("dmz -> core $CORE2:$port (the edges' link)|connects|$NS_DMZ|$CORE2|$port")
	done
	specs+=("dmz -> core $CORE2:5090 (Phone OAuth port, not for edges)|refused|$NS_DMZ|$CORE2|5090")
	specs+=("control: inside -> PostgreSQL $PG_IP:$PG_PORT|connects|$NS_IN|$PG_IP|$PG_PORT")
	specs+=("dmz -> PostgreSQL $PG_IP:$PG_PORT|refused|$NS_DMZ|$PG_IP|$PG_PORT")
	specs+=("outside -> PostgreSQL $PG_IP:$PG_PORT|refused|$NS_OUT|$PG_IP|$PG_PORT")
	specs+=("control: outside -> its own listener $PHONE_IP:9000|connects|$NS_OUT|$PHONE_IP|9000")
	specs+=("inside -> outside $PHONE_IP:9000 (replies only)|refused|$NS_IN|$PHONE_IP|9000")
	specs+=("dmz -> outside $PHONE_IP:9000 (replies only)|refused|$NS_DMZ|$PHONE_IP|9000")
	local i spec what how ns addr jobs=()
	for i in "${!specs[@]}"; do
		IFS='|' read -r what how ns addr port <<<"${specs[$i]}"
		$how "$ns" "$addr" "$port" &
		jobs+=($!)
	done
	for i in "${!specs[@]}"; do
		IFS='|' read -r what how ns addr port <<<"${specs[$i]}"
		check "$what $([ $how = connects ] && echo connects || echo 'is refused')" wait "${jobs[$i]}"
	done
	after=$(dropped_count)
	# 12 outside->core, 1 dmz->5090, 2 to PostgreSQL, 2 outwards: at least
	# one dropped SYN each (retransmissions add more).
	check "router's drop counter rose by at least 17 SYNs ($before -> $after)" test $((after - before)) -ge 17
	kill $listener 2>/dev/null || true
}

# --- phones -------------------------------------------------------------------
# Phones: P1..P6 = devices NSPH000000..NSPH000005, lines 2001..2006. P1-P3
# use edge-1 (core-2), P4-P6 edge-2 (core-3). P1 and P4 call; the others answer.
PH_PREFIX=NSPH
PH_LINE0=2001
ph_dev() { printf '%s%06d' $PH_PREFIX $(($1 - 1)); }
ph_line() { echo $((PH_LINE0 + $1 - 1)); }
ph_edge() { if [ "$1" -le 3 ]; then echo $EDGE1; else echo $EDGE2; fi; }
ph_other_edge() { if [ "$1" -le 3 ]; then echo $EDGE2; else echo $EDGE1; fi; }

# phone_args N: the flags of phone N (its edge first, with --failover the
# other edge too: issue 11 §2's ordered lists).
phone_args() {
	local n=$1 e o
	e=$(ph_edge "$n")
	o=$(ph_other_edge "$n")
	echo --ca "$WORK/pki/ca.pem" --domain $DOMAIN --device "$(ph_dev "$n")" --line "$(ph_line "$n")"
	if [ "$failover" = 1 ]; then
		# Re-registering every 16 s (0.8 x 20): a phone's next REGISTER after
		# its core dies comes within the stage's wait.
		echo --edge "https://$e:8443,https://$o:8443" --sip "$e:5061,$o:5061" --keepalive 2s --expires 20
	else
		echo --expires 600
		echo --edge "https://$e:8443" --sip "$e:5061"
	fi
}

# fresh_code N: issues a new activation code for phone N (revoking older ones).
fresh_code() {
	admin core-1 activation issue "$(ph_dev "$1")" | awk '/^activation code/ { print $3 }'
}

declare -A answerer
start_answerer() { # start_answerer N
	local n=$1 code
	code=$(fresh_code "$n")
	# shellcheck disable=SC2046
	nsenter --net=/run/netns/$NS_OUT -- "$BIN" phone $(phone_args "$n") --code "$code" --answer --talk 3s >"$WORK/phone-$n.log" 2>&1 9>&- &
	answerer[$n]=$!
	pids+=($!)
}

# wait_log FILE PATTERN COUNT SECONDS: FILE has at least COUNT lines matching PATTERN.
wait_log() {
	local f=$1 pat=$2 want=$3 secs=$4 i
	local end=$((SECONDS + secs))
	while [ $SECONDS -lt $end ]; do
		[ "$(grep -c -- "$pat" "$f" 2>/dev/null)" -ge "$want" ] && return 0
		sleep 0.1
	done
	return 1
}

# place_call FROM TO TAG: phone FROM (onboarded with a fresh code) calls
# phone TO's line for 3 s of SRTP through TURN; its output in call-TAG.log.
place_call() {
	local from=$1 to=$2 tag=$3 code
	code=$(fresh_code "$from")
	# shellcheck disable=SC2046
	in_ns $NS_OUT timeout 40 "$BIN" phone $(phone_args "$from") --code "$code" --call "$(ph_line "$to")" --talk 3s \
		>"$WORK/call-$tag.log" 2>&1
}

# call_ok TAG: the call's caller exited 0 and received SRTP packets with no
# authentication failures.
call_ok() {
	local f=$WORK/call-$1.log
	grep -q '^media received:' "$f" &&
		awk '/^media received:/ { gsub(",", ""); for (i = 1; i <= NF; i++) { if ($i == "received") r = $(i+1); if ($i == "failures") a = $(i+1) } } END { exit !(r > 0 && a == 0) }' "$f"
}

# Each caller at most once a round: a fresh code revokes the device's older one.
calls_round() { # calls_round TAG FROM:TO...: the calls in parallel; counts successes in $calls_done
	local tag=$1 spec from to jobs=() names=() i
	shift
	for spec in "$@"; do
		from=${spec%%:*} to=${spec#*:}
		place_call "$from" "$to" "$tag-$from-$to" &
		jobs+=($!)
		names+=("$tag-$from-$to")
	done
	for i in "${!jobs[@]}"; do
		if wait "${jobs[$i]}" && call_ok "${names[$i]}"; then
			calls_done=$((calls_done + 1))
			log "ok   call ${names[$i]}: $(grep '^media received' "$WORK/call-${names[$i]}.log")"
		else
			log "FAIL call ${names[$i]}: $(tail -3 "$WORK/call-${names[$i]}.log" | tr '\n' ' ')"
			fails=$((fails + 1))
		fi
	done
}

# answered: calls the answering phones received media in.
answered() {
	local n a=0
	for n in 2 3 5 6; do a=$((a + $(grep -c '^media received' "$WORK/phone-$n.log"))); done
	echo $a
}

# bindings_of LINES...: how many of these lines have a binding, as the
# publisher lists them (edgeway admin registrations, from inside).
bindings_of() {
	local out l n=0
	out=$(admin core-1 registrations)
	for l in "$@"; do grep -q "sip:$l@$DOMAIN" <<<"$out" && n=$((n + 1)); done
	echo $n
}

wait_bindings() { # wait_bindings WANT SECONDS LINES...
	local want=$1 secs=$2 i
	shift 2
	local end=$((SECONDS + secs))
	while [ $SECONDS -lt $end ]; do
		[ "$(bindings_of "$@")" -ge "$want" ] && return 0
		sleep 0.2
	done
	return 1
}

run_e2e() {
	local t0=$SECONDS
	test_firewall

	log "provisioning 6 phones (devices $(ph_dev 1)..$(ph_dev 6), lines $(ph_line 1)..$(ph_line 6))"
	provision_devices $PH_PREFIX 6 $PH_LINE0

	log "answering phones P2, P3 (edge-1) and P5, P6 (edge-2) onboard with activation codes through their edge and register"
	local n registered=0
	for n in 2 3 5 6; do start_answerer $n; done
	for n in 2 3 5 6; do
		if wait_log "$WORK/phone-$n.log" ' registered ' 1 30; then
			registered=$((registered + 1))
		else
			log "phone P$n did not register: $(tail -3 "$WORK/phone-$n.log" | tr '\n' ' ')"
		fi
	done
	check "4 answering phones registered through the edges ($registered)" test $registered = 4
	check "the publisher lists their 4 bindings (edgeway admin registrations)" \
		wait_bindings 4 10 "$(ph_line 2)" "$(ph_line 3)" "$(ph_line 5)" "$(ph_line 6)"
	admin core-1 registrations >"$WORK/registrations.txt" || true
	check "P2, P3's bindings have edge-1 in their Path, P5, P6's edge-2 (RFC 3327)" \
		eval 'wait_edge_path 5 "$EDGE1" 2 3 && wait_edge_path 5 "$EDGE2" 5 6'

	calls_done=0
	log "calls through one edge and core each: P1 -> P2 (edge-1), P4 -> P5 (edge-2), SRTP through the edges' TURN"
	local turn0 turn1
	turn0=$(counter_packets turn_udp)
	calls_round same 1:2 4:5
	turn1=$(counter_packets turn_udp)
	check "2 calls completed with media ($calls_done)" test $calls_done = 2
	# 3 s of 20 ms packets from each of 4 phones, all to the edges' TURN port
	# (the phones share one address: only the relays make media cross the router).
	check "the media went through the edges' TURN over UDP: $((turn1 - turn0)) packets >= 600" test $((turn1 - turn0)) -ge 600
	check "the answering phones received media in those 2 calls ($(answered))" test "$(answered)" = 2
	local onboarded
	onboarded=$(cat "$WORK"/phone-*.log "$WORK"/call-same-*.log | grep -c '^onboarded')
	check "6 phones onboarded with activation codes through the edges ($onboarded)" test "$onboarded" = 6

	if [ "$failover" = 1 ]; then
		run_failover
	else
		log "failover stage skipped (--no-failover or EWN_FAILOVER=0)"
	fi

	log "e2e took $((SECONDS - t0)) s; $fails failed check(s)"
	[ $fails = 0 ] || die "$fails check(s) failed; logs in $WORK"
	log "PASS"
}

# --- failover (issue 11 §2) -------------------------------------------------------
# Expects (the interfaces agreed for issue 11 §2):
# - a core routes a call to a binding another node made (cross round);
# - phones given both edges (--edge/--sip ordered lists) and --keepalive 2s
#   re-register through the other edge within a few keep-alive intervals
#   when theirs dies (RFC 5626 flow recovery), with the same tokens: the
#   answering processes keep running, onboarded once; `edgeway phone
#   --answer` logs each registration as a "registered" event; a phone whose
#   first edge is down onboards and calls through the next;
# - edges given an ordered `cores:` list (core_health_interval 1s) move to
#   the next core when theirs dies, so the phones' next REGISTER (every 16 s
#   here) binds through another core, and calls reach them again.
run_failover() {
	local t n alive
	log "calls across edges and cores (a binding made via core-3 routes a call placed via core-2): P1 -> P6, P4 -> P3"
	calls_round cross 1:6 4:3
	check "4 calls completed with media ($calls_done)" test $calls_done = 4
	log "failover 1: killing edge-1 (P2, P3 registered through it)"
	kill -KILL "${pid_of[edge-1]}"
	t=$SECONDS
	for n in 2 3; do
		check "P$n re-registered through edge-2 (flow recovery, RFC 5626)" wait_log "$WORK/phone-$n.log" ' registered ' 2 20
	done
	check "the publisher lists P2 and P3's bindings through edge-2 ($EDGE2)" wait_edge_path 20 "$EDGE2" 2 3
	log "edge failover checks done $((SECONDS - t)) s after the kill"
	for n in 2 3; do
		check "P$n kept its first tokens (onboarded once, same process)" test "$(grep -c '^onboarded' "$WORK/phone-$n.log")" = 1
	done
	calls_round after-edge 4:2 1:3 # P1's first edge is dead: it onboards and calls through edge-2
	alive=0
	for n in 2 3 5 6; do kill -0 "${answerer[$n]}" 2>/dev/null && alive=$((alive + 1)); done
	check "all 4 answering processes still running ($alive)" test $alive = 4

	log "failover 2: killing core-3 (edge-2's first core; every phone now goes through edge-2)"
	kill -KILL "${pid_of[core-3]}"
	t=$SECONDS
	check "P2, P3, P5, P6 have bindings again (through core-2, edge-2's next core)" wait_rebound 30 2 3 5 6
	log "core failover checks done $((SECONDS - t)) s after the kill"
	calls_round after-core 1:5 4:6
	check "8 calls completed in all ($calls_done)" test $calls_done = 8
}

# wait_edge_path SECONDS EDGE N...: the bindings of phones N have EDGE in their Path.
wait_edge_path() {
	local secs=$1 edge=$2 i n ok
	shift 2
	local end=$((SECONDS + secs))
	while [ $SECONDS -lt $end ]; do
		ok=1
		admin core-1 registrations >"$WORK/registrations.txt" 2>/dev/null || ok=0
		for n in "$@"; do grep "sip:$(ph_line "$n")@" "$WORK/registrations.txt" | grep -q "$edge" || ok=0; done
		[ $ok = 1 ] && return 0
		sleep 0.2
	done
	return 1
}

# wait_rebound SECONDS N...: each phone N registered once more after the
# core died (a new "registered" line in its log) and has a binding.
wait_rebound() {
	local secs=$1 i n ok
	shift
	declare -A seen
	for n in "$@"; do seen[$n]=$(grep -c ' registered ' "$WORK/phone-$n.log"); done
	local end=$((SECONDS + secs))
	while [ $SECONDS -lt $end ]; do
		ok=1
		for n in "$@"; do [ "$(grep -c ' registered ' "$WORK/phone-$n.log")" -gt "${seen[$n]}" ] || ok=0; done
		if [ $ok = 1 ]; then
			local lines=()
			for n in "$@"; do lines+=("$(ph_line "$n")"); done
			[ "$(bindings_of "${lines[@]}")" = $# ] && return 0
		fi
		sleep 0.2
	done
	return 1
}

# --- bench ------------------------------------------------------------------------
# bench_info FILE EDGE: the info file `edgeway bench` reads (quickstart.json's
# format: where the edge is, the CA, the domain); the admin API is not in it,
# as the phones' side cannot reach it: the devices are provisioned from
# inside and their codes handed over in a CSV (--codes).
bench_info() {
	cat >"$1" <<EOF
{"edge_https": "https://$2:8443", "edge_sip": "$2:5061", "ca_cert": "$WORK/pki/ca.pem", "domain": "$DOMAIN"}
EOF
}

# bench_provision PREFIX COUNT FIRST-LINE: devices through the publisher's
# admin API, 8 at a time, then their codes in one bulk call.
bench_provision() {
	local prefix=$1 count=$2 line=$3 core=${4:-core-1} addr=${5:-$CORE1} i
	local tok
	tok=$(<"$WORK/$core/admin.token")
	for ((i = 0; i < count; i++)); do
		printf '%s%06d %d\n' "$prefix" $i $((line + i))
	done | in_ns $NS_IN xargs -P 8 -n 2 sh -c 'curl -fsS -o /dev/null --cacert "$0" -X PUT -H "Authorization: Bearer $1" \
		-d "{\"model\":\"8845\",\"line\":\"$4\",\"security_profile\":\"'$PROFILE'\",\"allow_activation_code_via_mra\":true,\"activation_code_mra_service_domain\":\"'$DOMAIN'\"}" \
		"$2/api/v1/devices/$3"' "$WORK/pki/ca.pem" "$tok" "https://$addr:8443" || die "provisioning $prefix devices"
	local names=()
	for ((i = 0; i < count; i++)); do names+=("$(printf '%s%06d' "$prefix" $i)"); done
	admin "$core" activation issue-bulk "${names[@]}" >"$WORK/codes-$prefix.csv"
}

# bench_run TAG EDGE PREFIX FIRST-LINE SOURCES PIDS: one generator in
# outside against one edge, JSON in $WORK/bench-TAG.json.
bench_run() {
	local tag=$1 edge=$2 prefix=$3 line=$4 net=$5 procs=$6
	bench_info "$WORK/bench-$tag-info.json" "$edge"
	in_ns $NS_OUT "$BIN" bench register --quickstart "$WORK/bench-$tag-info.json" --codes "$WORK/codes-$prefix.csv" \
		--prefix "$prefix" --first-line "$line" --phones "$bench_phones" --source-net "$net" --duration "$bench_duration" \
		--pids "$procs" --progress never --json "$WORK/bench-$tag.json" >"$WORK/bench-$tag.txt" 2>&1
}

bench_summary() { # bench_summary TAG...: successes/s summed, p99 the worst, errors summed
	local f args=()
	for f in "$@"; do args+=("$WORK/bench-$f.json"); done
	jq -rs '"REGISTER/s \((map(.summary.throughput_per_s) | add) | floor)  p99 \(map(.summary.p99_ms) | max) ms  p50 \(map(.summary.p50_ms) | max) ms  successes \(map(.summary.successes) | add) of \(map(.summary.attempts) | add)  errors \(map(.summary.errors // {} | to_entries[] | .value) | add // 0)"' "${args[@]}"
}

run_bench() {
	command -v jq >/dev/null || die "jq is not installed"
	local store
	log "bench 1/2: 2 edges + 3 cores on PostgreSQL, $bench_phones phones per edge, $bench_duration"
	start_cluster
	bench_provision BNA "$bench_phones" 8000000
	bench_provision BNB "$bench_phones" 8100000
	# PostgreSQL: the postmaster and every backend the nodes hold open (pgx
	# pools), summed; a backend that comes later is left out.
	local pgp p
	pgp=$(for p in $(ip netns pids $NS_IN); do [ "$(stat -c %U /proc/$p 2>/dev/null)" = postgres ] && echo $p; done | paste -sd+)
	local procs="edge-1=${pid_of[edge-1]},edge-2=${pid_of[edge-2]},core-2=${pid_of[core-2]},core-3=${pid_of[core-3]},core-1=${pid_of[core-1]},postgres=$pgp"
	local pg0 pg1
	pg0=$(pg_writes)
	bench_run pg-1 $EDGE1 BNA 8000000 $NET.16.0/21 "$procs" &
	local g1=$!
	bench_run pg-2 $EDGE2 BNB 8100000 $NET.24.0/21 "$procs" &
	local g2=$!
	wait $g1 || die "bench against edge-1: $(tail -5 "$WORK/bench-pg-1.txt")"
	wait $g2 || die "bench against edge-2: $(tail -5 "$WORK/bench-pg-2.txt")"
	cat "$WORK/bench-pg-1.txt" "$WORK/bench-pg-2.txt" >&2
	local pg
	pg=$(bench_summary pg-1 pg-2)

	log "bench 2/2: 1 edge + 1 core on SQLite in the same namespaces, $((2 * bench_phones)) phones, $bench_duration"
	stop_procs # the nodes' backends exit, so their statistics are flushed
	pg1=$(pg_writes)
	local regs tx changes
	regs=$(jq -s 'map(.summary.successes) | add' "$WORK/bench-pg-1.json" "$WORK/bench-pg-2.json")
	read -r tx changes < <(cat "$WORK"/core-[123].log | awk '/location service stopped/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "changes_written") c += kv[2]; if (kv[1] == "transactions") t += kv[2] } } END { print t + 0, c + 0 }')
	local pgw
	pgw=$(awk -v a="$pg0" -v b="$pg1" -v r="$regs" -v tx="$tx" -v ch="$changes" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		printf "PostgreSQL per REGISTER (%d REGISTERs, onboarding of the phones included): %.2f rows written, %.2f WAL records, %.0f WAL bytes; the location services committed %d binding changes in %d transactions (%.1f per group commit)",
			r, (y[1] - x[1]) / r, (y[2] - x[2]) / r, (y[3] - x[3]) / r, ch, tx, (tx > 0 ? ch / tx : 0) }')
	pgw+=$'\n'$(runuser -u postgres -- "$PGBIN/psql" -q -h "$WORK/pg" -p $PG_PORT -U postgres -d edgeway -At -F ' ' \
		-c "SELECT count(*), pg_total_relation_size('registrations') FROM registrations" |
		awk '{ printf "PostgreSQL registrations table: %d rows, %.0f bytes a row with its indexes", $1, ($1 > 0 ? $2 / $1 : 0) }')
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m fast -w -t 20 stop >/dev/null # idle, but not in the way
	start_core core-s $CORE1 publisher "$WORK/core-s/core.db"
	wait_tcp $NS_IN $CORE1 8443 core-s 60
	wait_file "$WORK/core-s/admin.token" core-s
	provision_single
	start_edge edge-s $EDGE1 $CORE1
	wait_tcp $NS_DMZ $EDGE1 5061 edge-s 60
	wait_edge_linked edge-s $EDGE1
	bench_provision BNS $((2 * bench_phones)) 8200000 core-s $CORE1
	local saved=$bench_phones
	bench_phones=$((2 * saved))
	bench_run sqlite $EDGE1 BNS 8200000 $NET.16.0/20 "edge=${pid_of[edge-s]},core=${pid_of[core-s]}" ||
		die "bench against the single edge: $(tail -5 "$WORK/bench-sqlite.txt")"
	bench_phones=$saved
	cat "$WORK/bench-sqlite.txt" >&2
	local sq
	sq=$(bench_summary sqlite)
	echo "2 edges + 3 cores, PostgreSQL: $pg"
	echo "1 edge + 1 core, SQLite:       $sq"
	echo "$pgw"
}

# pg_writes: rows inserted+updated+deleted in the edgeway database, WAL
# records and WAL bytes of the server, as "ROWS RECORDS BYTES".
pg_writes() {
	runuser -u postgres -- "$PGBIN/psql" -q -h "$WORK/pg" -p $PG_PORT -U postgres -d edgeway -At -F ' ' \
		-c "SELECT (SELECT tup_inserted + tup_updated + tup_deleted FROM pg_stat_database WHERE datname = 'edgeway'), wal_records, wal_bytes FROM pg_stat_wal"
}

# provision_single: the SQLite node's own provisioning (it is its own publisher).
provision_single() {
	admin core-s params set export_controlled_allowed true >/dev/null
	admin core-s params set oauth_refresh_login_flow enabled >/dev/null
	admin core-s utils sipOAuth-mode enable >/dev/null
	admin core-s service restart callmanager >/dev/null
	admin core-s profile set $PROFILE --mode encrypted --transport TLS --oauth >/dev/null
	admin core-s expressway add --address "$EDGE1" --name $EXPC_NAME --description "edge-s" >/dev/null
}
