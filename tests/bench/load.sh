#!/usr/bin/env bash
# Consentry load benchmark: Consentry vs Squid vs Apache Traffic Server vs direct-to-origin.
#
#   tests/bench/load.sh                  # full comparison (~5 minutes), table at the end
#   tests/bench/load.sh --install-deps   # first apt-get/cargo install what is missing, then run
#
# Everything runs on 127.0.0.1 only, every load run is bounded in time, and every process the
# script starts is stopped by the EXIT trap, also on failure or Ctrl-C.
# See tests/bench/README.md for the method, the knobs (BENCH_* variables) and the caveats.

set -uo pipefail   # no `set -e`: one peer failing must skip its rows, not abort the comparison

# ---------------------------------------------------------------------------------------------
# Knobs (environment variables), with the defaults used for the figures in README.md
# ---------------------------------------------------------------------------------------------
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DURATION=${BENCH_DURATION:-10}        # seconds measured per row
WARMUP=${BENCH_WARMUP:-2}             # seconds of identical load first, discarded
CONNS=${BENCH_CONNS:-32}              # concurrent client connections
PROXY_CPU=${BENCH_PROXY_CPU:-0}       # core the proxy under test is pinned to
LOAD_CPU=${BENCH_LOAD_CPU:-1}         # core shared by the origin and the load generator
CONFIGS=${BENCH_CONFIGS:-direct,consentry,squid,trafficserver}
MODES=${BENCH_MODES:-http,https,https-newconn}
# Response bodies: 1k and 100k random bytes; html and html-noai are a 16 KiB HTML page served as
# text/html, without and with <meta name="robots" content="noai"> in its <head> (Consentry then
# scans the head; the bench runs it in monitor mode so the noai page is delivered, would-block);
# page is the html page's bytes as application/octet-stream (plain forwarding, the baseline).
SIZES=${BENCH_SIZES:-1k,100k}
HTTPS_HOST=${BENCH_HTTPS_HOST:-127.0.0.1}   # host in the HTTPS URLs: 127.0.0.1 or localhost
SQUID_BUMP=${BENCH_SQUID_BUMP:-stare}  # stare: mimic the origin certificate (works for IP URLs);
                                       # client-first: mint from the CONNECT name (needs localhost)
CONSENTRY_BIN=${CONSENTRY_BIN:-$REPO/target/release/consentry}
CONSENTRY_BUILD=${CONSENTRY_BUILD:-1} # 0: never run cargo build, use the binary as it is
# The audit log while measuring: none (off: the proxy-core comparison), async or sync (SQLite in
# the scratch directory, group commit).
CONSENTRY_STORAGE=${BENCH_CONSENTRY_STORAGE:-none}
# With an audit log: also publish every record into the transparency log (on) or not (off).
CONSENTRY_TLOG=${BENCH_CONSENTRY_TLOG:-on}
# Consentry runs with its default log level, as shipped; this sets its RUST_LOG instead (e.g.
# "consentry::decision=debug" to measure the per-decision log line). The caller's RUST_LOG is
# not passed on, so that a stray setting cannot change the figures.
CONSENTRY_RUST_LOG=${BENCH_CONSENTRY_RUST_LOG:-}
OUT=${BENCH_OUT:-/tmp/consentry-bench-$(date +%Y%m%d-%H%M%S)}
# The machine may be shared (builds, tests). Before each row wait up to QUIET_WAIT s for it to be
# idle (at most QUIET_MAX % busy); a row during which processes not ours used more than
# FOREIGN_MAX % of either core is measured again, up to RETRIES times, and flagged if still spoiled.
QUIET_WAIT=${BENCH_QUIET_WAIT:-120}
QUIET_MAX=${BENCH_QUIET_MAX:-10}
FOREIGN_MAX=${BENCH_FOREIGN_MAX:-10}
RETRIES=${BENCH_RETRIES:-2}
INSTALL_DEPS=0

for arg in "$@"; do
    case $arg in
        --install-deps) INSTALL_DEPS=1 ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

export PATH="$PATH:$HOME/.cargo/bin:/usr/sbin:/sbin"
export LC_ALL=C

log()  { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
warn() { printf '[bench %s] WARNING: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die()  { printf '[bench %s] FATAL: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }
want() { [[ ",$1," == *",$2,"* ]]; }   # want LIST ITEM: is ITEM in the comma list?

# ---------------------------------------------------------------------------------------------
# Process bookkeeping and cleanup. Each server is started with `setsid`, so its pid is also its
# process-group id. Helpers it forks may start their own groups (Squid's certificate generators
# do), so a service is "its process and all its descendants", found through the parent links.
# Only processes started here are ever signalled.
# ---------------------------------------------------------------------------------------------
declare -A SERVICE_PID=()
WORK=""

tree_pids() {   # tree_pids PID: PID and all its descendants, one per line
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { parent[$1] = $2 }
        END { keep[root] = 1; n = 1
              while (n) { n = 0; for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; n = 1 } }
              for (p in keep) if (p in parent) print p }'
}

stop_service() {   # stop_service NAME: TERM the process and its descendants, KILL them after 5 s
    local name=$1 pg=${SERVICE_PID[$1]:-} pids
    [[ -n $pg ]] || return 0
    unset "SERVICE_PID[$name]"
    pids=$(tree_pids "$pg")
    [[ -n $pids ]] || return 0
    kill -TERM $pids 2>/dev/null
    local p alive
    for _ in $(seq 50); do
        alive=""
        for p in $pids; do kill -0 "$p" 2>/dev/null && alive+=" $p"; done
        [[ -n $alive ]] || return 0
        sleep 0.1
    done
    warn "$name (pids$alive) ignored SIGTERM; killing them"
    kill -KILL $alive 2>/dev/null
    return 0
}

LOAD_PID=""
in_background() {   # run a load generator as a waited-for background job: unlike a foreground
    # command, `wait` lets a SIGTERM/SIGINT trap run at once, and cleanup can stop the generator.
    "$@" &
    LOAD_PID=$!
    wait "$LOAD_PID"
    local rc=$?
    LOAD_PID=""
    return "$rc"
}

exec 9>&2   # the real stderr, for cleanup: a trap may fire inside a redirected function call
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    exec 2>&9
    [[ -n $LOAD_PID ]] && kill "$LOAD_PID" 2>/dev/null
    for name in "${!SERVICE_PID[@]}"; do stop_service "$name"; done
    # Keep the logs of a failed run for inspection; a good run leaves nothing behind.
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ $rc -eq 0 && ${BENCH_KEEP_WORK:-0} != 1 ]]; then rm -rf "$WORK"; else warn "work dir kept for inspection: $WORK"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

STARTED=""
start_service() {   # start_service NAME CPU DIR LOGFILE CMD...: run CMD in DIR pinned to CPU, in its
    # own process group; sets $STARTED to its pid. (The subshell execs setsid, which execs taskset,
    # which execs CMD, so $! is CMD's pid and, as setsid did not need to fork, its group id.)
    local name=$1 cpu=$2 dir=$3 logf=$4; shift 4
    (cd "$dir" && exec setsid taskset -c "$cpu" "$@") >"$logf" 2>&1 </dev/null &
    SERVICE_PID[$name]=$!
    STARTED=$!
}

wait_port() {   # wait_port PORT PID SECONDS: until 127.0.0.1:PORT accepts, or PID dies
    local port=$1 pid=$2 secs=$3 i
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

free_ports() {   # free_ports N: N distinct free loopback TCP ports (held together, then released)
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# ---------------------------------------------------------------------------------------------
# Dependencies
# ---------------------------------------------------------------------------------------------
install_deps() {
    local pkgs=()
    command -v nginx >/dev/null          || pkgs+=(nginx-light)
    command -v wrk >/dev/null            || pkgs+=(wrk)
    command -v squid >/dev/null          || pkgs+=(squid-openssl)
    command -v traffic_server >/dev/null || pkgs+=(trafficserver)
    command -v openssl >/dev/null        || pkgs+=(openssl)
    command -v curl >/dev/null           || pkgs+=(curl)
    command -v taskset >/dev/null        || pkgs+=(util-linux)
    command -v python3 >/dev/null        || pkgs+=(python3)
    if ((${#pkgs[@]})); then
        log "apt-get install ${pkgs[*]}"
        # The packages' maintainer scripts would start system-wide squid/trafficserver/nginx on
        # their default ports; a temporary policy-rc.d forbids that (and is removed right after).
        local policy=/usr/sbin/policy-rc.d made_policy=0
        if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >$policy && chmod +x $policy && made_policy=1; fi
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >&2
        local rc=$?
        ((made_policy)) && rm -f $policy
        ((rc == 0)) || die "apt-get install failed"
    fi
    # oha (HTTPS load through CONNECT with a custom CA) is not packaged in Debian 12.
    if ! command -v oha >/dev/null; then
        log "cargo install oha --locked (a few minutes, once)"
        nice -n 10 cargo install oha --locked >&2 || die "cargo install oha failed"
    fi
}
((INSTALL_DEPS)) && install_deps

for tool in python3 openssl curl taskset setsid; do
    command -v $tool >/dev/null || die "$tool is missing (run with --install-deps)"
done
command -v nginx >/dev/null || die "nginx (the origin) is missing: run tests/bench/load.sh --install-deps"
if ! command -v wrk >/dev/null; then
    warn "wrk missing: plain-HTTP rows skipped (--install-deps)"
    MODES=$(tr ',' '\n' <<<"$MODES" | grep -vx http | paste -sd, -)
fi
HAVE_OHA=1
command -v oha >/dev/null || { HAVE_OHA=0; warn "oha missing: HTTPS rows skipped (--install-deps)"; }
(( $(nproc --all) >= 2 )) || warn "fewer than 2 cores: proxy and load generator will share a core"

# ---------------------------------------------------------------------------------------------
# Scratch directory, ports, test PKI and payloads
# ---------------------------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/consentry-bench-work.XXXXXX)
# Squid and nginx drop privileges to `proxy`/`nobody`; they must be able to read their files.
chmod 755 "$WORK"
mkdir -p "$OUT"
RESULTS=$OUT/results.tsv
printf 'config\tmode\tsize\trps\tp50_ms\tp99_ms\trequests\tbad\tcpu_us_per_req\tcpu_pct\thwm_kib\torigin_conns\tload_core_pct\tnote\n' >"$RESULTS"

read -r ORIGIN_HTTP ORIGIN_HTTPS ORIGIN_STATUS PROXY_PORT ADMIN_PORT PUBLIC_PORT < <(free_ports 6)
log "work dir $WORK; results in $OUT"
log "origin http=127.0.0.1:$ORIGIN_HTTP https=127.0.0.1:$ORIGIN_HTTPS; proxies listen on 127.0.0.1:$PROXY_PORT"

# A throw-away CA for the origin; its leaf names 127.0.0.1 (IP SAN) since every URL uses the IP.
# EC P-256 everywhere: what a modern origin serves, and cheap to sign with.
mk_ca() {   # mk_ca NAME CN
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3 \
        -keyout "$WORK/$1.key" -out "$WORK/$1.pem" -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        2>/dev/null
}
mk_ca origin-ca "Consentry bench origin CA" || die "openssl: cannot make the origin CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$WORK/origin.key" -out "$WORK/origin.csr" 2>/dev/null &&
openssl x509 -req -in "$WORK/origin.csr" -CA "$WORK/origin-ca.pem" -CAkey "$WORK/origin-ca.key" \
    -CAcreateserial -days 3 -out "$WORK/origin.pem" -extfile <(printf '%s\n' \
    "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth") 2>/dev/null ||
    die "openssl: cannot make the origin certificate"
chmod 644 "$WORK"/*.key

# Random (incompressible) bodies, so no layer can win by compressing.
mkdir -p "$WORK/www" "$WORK/nginx"
head -c 1024 /dev/urandom >"$WORK/www/1k"
head -c $((100 * 1024)) /dev/urandom >"$WORK/www/100k"
html_page() {   # html_page EXTRA_HEAD: a 16 KiB article page
    printf '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Story</title>'
    printf '<meta name="description" content="A news story"><link rel="stylesheet" href="/s.css">%s</head><body>' "$1"
    head -c 16000 /dev/zero | tr '\0' 'a' | fold -w 80 | sed 's/^/<p>/; s/$/<\/p>/'
    printf '</body></html>\n'
}
html_page '' >"$WORK/www/html"
cp "$WORK/www/html" "$WORK/www/page"   # the same bytes served as application/octet-stream: no scan
html_page '<meta name="robots" content="noai, noimageai">' >"$WORK/www/html-noai"
declare -A SIZE_BYTES=([1k]=1024 [100k]=102400 [html]=$(stat -c %s "$WORK/www/html") [html-noai]=$(stat -c %s "$WORK/www/html-noai") [page]=$(stat -c %s "$WORK/www/page"))

# ---------------------------------------------------------------------------------------------
# Origin: nginx, one worker pinned to the load core, access log off, keep-alive unlimited
# ---------------------------------------------------------------------------------------------
start_origin() {
    cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    default_type application/octet-stream;
    sendfile on; tcp_nopush on; tcp_nodelay on;
    keepalive_requests 1000000;   # default 1000 would make every proxy reconnect now and then
    keepalive_timeout 120s;
    client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi; uwsgi_temp_path $WORK/nginx/uwsgi; scgi_temp_path $WORK/nginx/scgi;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    server {
        listen 127.0.0.1:$ORIGIN_HTTP;
        listen 127.0.0.1:$ORIGIN_HTTPS ssl;
        ssl_certificate $WORK/origin.pem;
        ssl_certificate_key $WORK/origin.key;
        root $WORK/www;
        location ~ ^/html { default_type text/html; }
    }
    # nginx's connection counters: how many connections each row made the origin accept tells
    # whether a proxy pools its upstream connections.
    server {
        listen 127.0.0.1:$ORIGIN_STATUS;
        location / { stub_status; }
    }
}
EOF
    start_service origin "$LOAD_CPU" "$WORK/nginx" "$WORK/nginx/stdout.log" \
        nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
    NGINX_PID=$STARTED
    wait_port "$ORIGIN_HTTP" "$NGINX_PID" 10 && wait_port "$ORIGIN_HTTPS" "$NGINX_PID" 5 ||
        { cat "$WORK/nginx/error.log" >&2; die "nginx origin did not start"; }
    local s got
    for s in 1k 100k; do
        got=$(curl -sS --cacert "$WORK/origin-ca.pem" -o /dev/null -w '%{http_code} %{size_download}' \
            "https://$HTTPS_HOST:$ORIGIN_HTTPS/$s") || die "origin HTTPS check failed"
        [[ $got == "200 ${SIZE_BYTES[$s]}" ]] || die "origin returned '$got' for /$s"
    done
    log "origin up (nginx pid $NGINX_PID, core $LOAD_CPU)"
}

# ---------------------------------------------------------------------------------------------
# Load generators
# ---------------------------------------------------------------------------------------------
# wrk, plain HTTP. Through a proxy the request line must be absolute-form
# (GET http://host:port/path HTTP/1.1), which wrk only does from Lua. The `done` hook prints one
# machine-readable line with wrk's own counters.
run_wrk() {   # run_wrk SECONDS PROXYPORT|"" SIZE -> "BENCH key=value ..." on stdout
    local secs=$1 pport=$2 size=$3 script=$WORK/wrk-$3-${2:-direct}.lua target path
    if [[ -n $pport ]]; then
        target="http://127.0.0.1:$pport"; path="http://127.0.0.1:$ORIGIN_HTTP/$size"
    else
        target="http://127.0.0.1:$ORIGIN_HTTP"; path="/$size"
    fi
    cat >"$script" <<EOF
wrk.method = "GET"
wrk.path = "$path"
wrk.headers["Host"] = "127.0.0.1:$ORIGIN_HTTP"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d status=%d connect=%d read=%d write=%d timeout=%d bytes=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout, summary.bytes))
end
EOF
    in_background taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 5s -s "$script" "$target" 2>&1
}

# oha, HTTPS. With -x it sends CONNECT to the proxy, then TLS inside the tunnel, trusting only
# the CA given (the proxy's minting CA, or the origin CA when direct). Keep-alive mode opens
# CONNECT+TLS once per connection; --disable-keepalive does it for every request.
run_oha() {   # run_oha SECONDS PROXYPORT|"" CAFILE SIZE KEEPALIVE(1|0) -> oha JSON on stdout
    local secs=$1 pport=$2 ca=$3 size=$4 ka=$5 args=()
    [[ -n $pport ]] && args+=(-x "http://127.0.0.1:$pport")
    ((ka)) || args+=(--disable-keepalive)
    in_background taskset -c "$LOAD_CPU" oha --no-tui --output-format json -z "${secs}s" -c "$CONNS" -t 5s \
        --cacert "$ca" "${args[@]}" "https://$HTTPS_HOST:$ORIGIN_HTTPS/$size" 2>&1
}

# Turn either tool's output into: requests rps p50_ms p99_ms bad note
parse_load() {   # parse_load wrk|oha FILE SIZE
    python3 - "$1" "$2" "${SIZE_BYTES[$3]}" <<'EOF'
import json, re, sys
tool, path, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
text = open(path, errors="replace").read()
def out(req, rps, p50, p99, bad, note):
    print(f"{req}\t{rps:.0f}\t{p50:.3f}\t{p99:.3f}\t{bad}\t{note or '-'}")
if tool == "wrk":
    m = re.search(r"^BENCH (.*)$", text, re.M)
    if not m:
        sys.exit("no wrk summary: " + text.strip()[-300:])
    v = {k: int(x) for k, x in (kv.split("=") for kv in m.group(1).split())}
    sock = v["connect"] + v["read"] + v["write"] + v["timeout"]
    bad = v["status"] + sock
    note = []
    if v["status"]: note.append(f"{v['status']} HTTP>=400")
    if sock: note.append(f"socket errors c/r/w/t={v['connect']}/{v['read']}/{v['write']}/{v['timeout']}")
    # bytes include headers; a large shortfall means truncated or wrong bodies
    if v["requests"] and v["bytes"] / v["requests"] < size:
        note.append(f"only {v['bytes'] // v['requests']} B/response")
    # rps counts only responses that were not errors
    ok = v["requests"] - v["status"]
    out(v["requests"], ok / (v["duration_us"] / 1e6), v["p50_us"] / 1e3, v["p99_us"] / 1e3, bad, "; ".join(note))
else:
    try:
        j = json.loads(text[text.index("{"):])
    except Exception:
        sys.exit("no oha JSON: " + text.strip()[-300:])
    s = j["summary"]
    codes = {int(k): v for k, v in (j.get("statusCodeDistribution") or {}).items()}
    errs = j.get("errorDistribution") or {}
    # oha cancels what is in flight when -z expires; those are not failures of the proxy.
    errs = {k: v for k, v in errs.items() if "deadline" not in k}
    req = sum(codes.values())
    ok = sum(v for k, v in codes.items() if 200 <= k < 300)
    bad = req - ok + sum(errs.values())
    note = []
    if req - ok: note.append("non-2xx " + ",".join(f"{k}x{v}" for k, v in sorted(codes.items()) if not 200 <= k < 300))
    if errs: note.append("errors " + "; ".join(f"{v}x {k[:80]}" for k, v in errs.items()))
    if req and s.get("sizePerRequest") and s["sizePerRequest"] < size:
        note.append(f"only {s['sizePerRequest']:.0f} B/response")
    lat = j.get("latencyPercentilesSuccessful") or j["latencyPercentiles"]
    def ms(x): return (x or 0) * 1e3
    out(req, ok / s["total"] if s["total"] else 0, ms(lat.get("p50")), ms(lat.get("p99")), bad, "; ".join(note))
EOF
}

# ---------------------------------------------------------------------------------------------
# Proxy accounting: CPU time (utime+stime, all threads) and peak RSS of one process
# ---------------------------------------------------------------------------------------------
# Summed over the proxy's process tree, so that helpers count too (Squid's certificate
# generators); Consentry and Traffic Server are one process each.
CLK_TCK=$(getconf CLK_TCK)
group_pids() { tree_pids "$1"; }
cpu_ticks() {   # utime+stime: fields 14 and 15 of /proc/PID/stat, counted after comm's ")"
    local p files=()
    for p in $(group_pids "$1"); do files+=("/proc/$p/stat"); done
    awk '{ sub(/^.*\) /, ""); t += $12 + $13 } END { print t + 0 }' "${files[@]}" 2>/dev/null
}
reset_hwm() {   # "5" resets VmHWM (peak RSS) to the current RSS, so each row gets its own peak
    local p
    for p in $(group_pids "$1"); do echo 5 >"/proc/$p/clear_refs" 2>/dev/null; done
}
hwm_kib() {
    local p files=()
    for p in $(group_pids "$1"); do files+=("/proc/$p/status"); done
    awk '/^VmHWM:/ { k += $2 } END { print k + 0 }' "${files[@]}" 2>/dev/null
}
# Per-core counters from /proc/stat, to see which core was the bottleneck and to catch load
# that is not ours (another build on the machine, or VM steal time) spoiling a row.
core_stat() {   # -> "total idle steal" for core $1, in ticks since boot
    awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $5 + $6, $9 }' /proc/stat
}
all_stat() { core_stat ""; }   # the "cpu" line: all cores together
core_busy() {   # core_busy "BEFORE" "AFTER" -> "busy% steal%" over the interval
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[1] - x[1];
        if (t <= 0) { print "- -"; exit }
        printf "%.0f %.0f\n", 100 * (t - (y[2] - x[2])) / t, 100 * (y[3] - x[3]) / t }'
}
origin_accepts() {   # connections nginx has accepted so far (stub_status, 3rd line, 1st number)
    curl -s --max-time 5 "http://127.0.0.1:$ORIGIN_STATUS/" | awk 'NR == 3 { print $1 }'
}

# ---------------------------------------------------------------------------------------------
# One row: warm up, then measure; appends to $RESULTS
# ---------------------------------------------------------------------------------------------
skip_row() {   # skip_row CONFIG MODE SIZE REASON: a results line with no figures
    printf '%s\t%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t%s' "$1" "$2" "$3" "$4"
}
record_skip() {   # record_skip CONFIG MODE SIZE REASON
    skip_row "$@" >>"$RESULTS"; echo >>"$RESULTS"
    warn "$1 $2 $3 skipped: $4"
}

load_cmd() {   # load_cmd SECONDS CONFIG MODE SIZE PROXYPORT CA -> runs the right generator
    local secs=$1 mode=$3 size=$4 pport=$5 ca=$6
    case $mode in
        http)          run_wrk "$secs" "$pport" "$size" ;;
        https)         run_oha "$secs" "$pport" "$ca" "$size" 1 ;;
        https-newconn) run_oha "$secs" "$pport" "$ca" "$size" 0 ;;
    esac
}

# Wait until the machine is idle (nothing of ours runs between rows), so that a build or test
# run by someone else on the same machine does not spoil the next row.
quiet_gate() {
    local waited=0 a b busy
    while :; do
        a=$(all_stat); sleep 1; b=$(all_stat)
        read -r busy _ < <(core_busy "$a" "$b")
        ((busy <= QUIET_MAX)) && return 0
        if ((waited == 0)); then log "machine busy (${busy}% of all cores, not us): waiting up to ${QUIET_WAIT}s"; fi
        ((waited += 3)); ((waited >= QUIET_WAIT)) && { warn "machine still ${busy}% busy; measuring anyway"; return 0; }
        sleep 2
    done
}

CHILD_TICKS=0
children_ticks() {   # sets CHILD_TICKS: CPU ticks of this shell's reaped children (the load
    # generator). `times` must run in this very shell, not in a $(...) subshell.
    times >"$WORK/times"
    CHILD_TICKS=$(awk -v hz="$CLK_TCK" 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/);
        printf "%.0f\n", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * hz }' "$WORK/times")
}

ROW="" SPOILED=0
measure_once() {   # measure_once CONFIG MODE SIZE PROXYPID|"" PROXYPORT|"" CA: sets ROW, and
    # SPOILED to how much of a core other processes took (0 when under FOREIGN_MAX)
    local cfg=$1 mode=$2 size=$3 pid=$4 pport=$5 ca=$6 tool=wrk raw=$WORK/load-$1-$2-$3.out
    [[ $mode == http ]] || tool=oha
    ROW="" SPOILED=0
    log "$cfg $mode $size: ${WARMUP}s warm-up + ${DURATION}s measured, $CONNS connections"
    load_cmd "$WARMUP" "$cfg" "$mode" "$size" "$pport" "$ca" >/dev/null

    # --- counters before
    local t0=0 t1=0 hwm=- cpu=- pct=- conns=- a0 a1 cp0 cp1 cl0 cl1 n0 n1 g0 g1
    if [[ -n $pid ]]; then reset_hwm "$pid"; t0=$(cpu_ticks "$pid"); fi
    a0=$(origin_accepts); n0=$(cpu_ticks "$NGINX_PID"); children_ticks; g0=$CHILD_TICKS
    cp0=$(core_stat "$PROXY_CPU"); cl0=$(core_stat "$LOAD_CPU")
    # --- the measured run
    load_cmd "$DURATION" "$cfg" "$mode" "$size" "$pport" "$ca" >"$raw"
    # --- counters after
    cp1=$(core_stat "$PROXY_CPU"); cl1=$(core_stat "$LOAD_CPU")
    a1=$(origin_accepts); n1=$(cpu_ticks "$NGINX_PID"); children_ticks; g1=$CHILD_TICKS
    [[ -n $a0 && -n $a1 ]] && conns=$((a1 - a0 - 1))   # minus the status request itself
    if [[ -n $pid ]]; then
        if ! kill -0 "$pid" 2>/dev/null; then ROW=$(skip_row "$cfg" "$mode" "$size" "proxy died during the run"); return 1; fi
        t1=$(cpu_ticks "$pid"); hwm=$(hwm_kib "$pid")
    fi

    local parsed
    if ! parsed=$(parse_load "$tool" "$raw" "$size" 2>&1); then
        ROW=$(skip_row "$cfg" "$mode" "$size" "load generator failed: ${parsed//$'\t'/ }"); return 1
    fi
    local req rps p50 p99 bad note
    IFS=$'\t' read -r req rps p50 p99 bad note <<<"$parsed"
    [[ $note == - ]] && note=""
    local ticks=$((DURATION * CLK_TCK)) pbusy psteal lbusy lsteal
    read -r pbusy psteal < <(core_busy "$cp0" "$cp1")
    read -r lbusy lsteal < <(core_busy "$cl0" "$cl1")
    if [[ -n $pid ]] && ((req > 0)); then
        local us=$(( (t1 - t0) * 1000000 / CLK_TCK ))
        cpu=$(awk -v u="$us" -v r="$req" 'BEGIN { printf "%.1f", u / r }')
        pct=$(( (t1 - t0) * 100 / ticks ))
    fi
    # Busy time on a core that our processes do not account for is someone else's load.
    # (A few % is the kernel's own interrupt work for the loopback traffic.)
    local pforeign=$((pbusy - ${pct/-/0})) lforeign=$((lbusy - (n1 - n0 + g1 - g0) * 100 / ticks))
    if ((pforeign > FOREIGN_MAX || lforeign > FOREIGN_MAX)); then
        SPOILED=$((pforeign > lforeign ? pforeign : lforeign))
        note="${note:+$note; }other load: ${pforeign}% of core $PROXY_CPU, ${lforeign}% of core $LOAD_CPU"
        warn "$cfg $mode $size: other processes used ${pforeign}% of core $PROXY_CPU and ${lforeign}% of core $LOAD_CPU"
    fi
    ((psteal + lsteal > 5)) && note="${note:+$note; }VM steal ${psteal}%/${lsteal}%"
    ROW=$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' "$cfg" "$mode" "$size" \
        "$rps" "$p50" "$p99" "$req" "$bad" "$cpu" "$pct" "$hwm" "$conns" "$lbusy" "${note:--}")
    log "  -> $rps req/s, p50 ${p50} ms, p99 ${p99} ms, failed $bad; proxy ${cpu} us/req, ${pct}% of core $PROXY_CPU, peak RSS ${hwm} KiB; load core ${lbusy}% busy; origin accepted $conns connections${note:+; $note}"
    [[ $bad == 0 ]] || warn "$cfg $mode $size: $bad failed requests; details in $raw: $(head -c 400 "$raw")"
    return 0
}

measure() {   # measure CONFIG MODE SIZE PROXYPID|"" PROXYPORT|"" CA: one row into $RESULTS
    local try best="" best_spoiled=1000
    for ((try = 0; try <= RETRIES; try++)); do
        ((try)) && log "  measuring $1 $2 $3 again (other load spoiled the last try)"
        quiet_gate
        if ! measure_once "$@"; then
            warn "$1 $2 $3 skipped: ${ROW##*$'\t'}"; best=$ROW; break
        fi
        # keep the attempt least disturbed by other load
        ((SPOILED < best_spoiled)) && { best=$ROW; best_spoiled=$SPOILED; }
        ((SPOILED)) || break
    done
    printf '%s\n' "$best" >>"$RESULTS"
    return 0
}

# Before loading a proxy, one curl through it must return the exact body length with 200;
# a proxy answering errors fast would otherwise look like a fast proxy.
preflight() {   # preflight CONFIG MODE SIZE PROXYPORT CA -> 0 if fine, else prints why
    local cfg=$1 mode=$2 size=$3 pport=$4 ca=$5 url hdrs=$WORK/preflight.hdr got
    if [[ $mode == http ]]; then url="http://127.0.0.1:$ORIGIN_HTTP/$size"; else url="https://$HTTPS_HOST:$ORIGIN_HTTPS/$size"; fi
    got=$(curl -sS --max-time 10 --cacert "$ca" -x "http://127.0.0.1:$pport" -D "$hdrs" -o /dev/null \
        -w '%{http_code} %{size_download}' "$url" 2>&1) || { echo "curl: $got"; return 1; }
    [[ $got == "200 ${SIZE_BYTES[$size]}" ]] || { echo "got '$got', want '200 ${SIZE_BYTES[$size]}'"; return 1; }
    if [[ $cfg == consentry ]] && ! grep -qi '^consentry-decision: *allow' "$hdrs"; then
        warn "consentry: response lacks 'Consentry-Decision: allow' (headers: $(tr -d '\r' <"$hdrs" | tr '\n' '|'))"
    fi
    return 0
}

# Run every wanted mode x size against one proxy that is already up.
measure_proxy() {   # measure_proxy CONFIG PID CA|"" HTTPS_SKIP_REASON|""
    local cfg=$1 pid=$2 ca=$3 https_skip=$4 mode size why
    for mode in ${MODES//,/ }; do
        for size in ${SIZES//,/ }; do
            [[ $mode == https-newconn && $size != 1k ]] && continue   # handshake cost: 1k is enough
            if [[ $mode != http ]]; then
                [[ -n $https_skip ]] && { record_skip "$cfg" "$mode" "$size" "$https_skip"; continue; }
                ((HAVE_OHA)) || { record_skip "$cfg" "$mode" "$size" "oha not installed"; continue; }
            fi
            if ! kill -0 "$pid" 2>/dev/null; then record_skip "$cfg" "$mode" "$size" "proxy not running"; continue; fi
            if ! why=$(preflight "$cfg" "$mode" "$size" "$PROXY_PORT" "${ca:-$WORK/origin-ca.pem}"); then
                record_skip "$cfg" "$mode" "$size" "preflight failed: $why"; continue
            fi
            measure "$cfg" "$mode" "$size" "$pid" "$PROXY_PORT" "$ca"
        done
    done
}

# ---------------------------------------------------------------------------------------------
# (1) direct: the ceiling of this rig (load generator + origin on their core, no proxy)
# ---------------------------------------------------------------------------------------------
bench_direct() {
    local mode size
    for mode in ${MODES//,/ }; do
        for size in ${SIZES//,/ }; do
            [[ $mode == https-newconn && $size != 1k ]] && continue
            [[ $mode != http ]] && ! ((HAVE_OHA)) && { record_skip direct "$mode" "$size" "oha not installed"; continue; }
            measure direct "$mode" "$size" "" "" "$WORK/origin-ca.pem"
        done
    done
}

# ---------------------------------------------------------------------------------------------
# (2) Consentry, with the bench config from the run contract
# ---------------------------------------------------------------------------------------------
# Built before anything is started or pinned, so the build has both cores and is not measured.
CONSENTRY_SKIP=""
build_consentry() {
    if [[ $CONSENTRY_BUILD == 1 ]]; then
        log "cargo build --release in $REPO (no-op when up to date)"
        if ! (cd "$REPO" && nice -n 10 cargo build --release) >"$WORK/consentry-build.log" 2>&1; then
            tail -n 15 "$WORK/consentry-build.log" >&2
            if [[ -x $CONSENTRY_BIN ]]; then
                warn "cargo build failed (above); benchmarking the existing, possibly stale, $CONSENTRY_BIN"
            else
                CONSENTRY_SKIP="cargo build --release failed: $(grep -m1 '^error' "$WORK/consentry-build.log")"
            fi
        fi
    fi
    [[ -z $CONSENTRY_SKIP && ! -x $CONSENTRY_BIN ]] && CONSENTRY_SKIP="binary $CONSENTRY_BIN not found"
    [[ -z $CONSENTRY_SKIP ]] || warn "Consentry rows will be skipped: $CONSENTRY_SKIP"
}

bench_consentry() {
    local dir=$WORK/consentry skip_all=$CONSENTRY_SKIP
    mkdir -p "$dir"
    cat >"$dir/consentry.toml" <<EOF
data_dir = "$dir/consentry-data"
[proxy]
listen = "127.0.0.1:$PROXY_PORT"
allow_private_destinations = true
mode = "monitor"
[tls]
intercept = true
upstream_roots = ["$WORK/origin-ca.pem"]
[admin]
listen = "127.0.0.1:$ADMIN_PORT"
[public]
listen = "127.0.0.1:$PUBLIC_PORT"
[storage]
$(case $CONSENTRY_STORAGE in
    none) echo 'url = "none"' ;;
    *) echo "durability = \"$CONSENTRY_STORAGE\"" ;;
  esac)
[tlog]
enabled = $([[ $CONSENTRY_TLOG == on ]] && echo true || echo false)
EOF
    local pid="" ca_skip=""
    if [[ -z $skip_all ]]; then
        # `ca` first, so the CA exists before `run` and the proxy's CA is the one we trust.
        # Both run from $dir so that any relative default path lands in the scratch directory.
        if ! (cd "$dir" && "$CONSENTRY_BIN" ca -c "$dir/consentry.toml") >"$dir/ca.pem" 2>"$dir/ca.err" ||
            ! grep -q 'BEGIN CERTIFICATE' "$dir/ca.pem"; then
            ca_skip="'consentry ca' failed: $(tail -c 300 "$dir/ca.err")"
            warn "$ca_skip"
        fi
        # The knobs CONSENTRY_BUILD and CONSENTRY_BIN would read as config overrides (CONSENTRY_*).
        local envs=(-u RUST_LOG -u CONSENTRY_LOG_FORMAT -u CONSENTRY_BUILD -u CONSENTRY_BIN)
        [[ -n $CONSENTRY_RUST_LOG ]] && envs+=("RUST_LOG=$CONSENTRY_RUST_LOG")
        start_service consentry "$PROXY_CPU" "$dir" "$dir/consentry.log" \
            env "${envs[@]}" "$CONSENTRY_BIN" run -c "$dir/consentry.toml"
        pid=$STARTED
        if ! wait_port "$PROXY_PORT" "$pid" 20; then
            local how="was not listening after 20 s"
            kill -0 "$pid" 2>/dev/null || { wait "$pid"; how="exited with status $?"; }
            skip_all="consentry $how: $(tail -n 5 "$dir/consentry.log" | tr '\n' ' ' | tail -c 400)"
        else
            log "consentry up (pid $pid, core $PROXY_CPU)"
        fi
    fi
    if [[ -n $skip_all ]]; then
        local mode size
        for mode in ${MODES//,/ }; do for size in ${SIZES//,/ }; do
            [[ $mode == https-newconn && $size != 1k ]] && continue
            record_skip consentry "$mode" "$size" "$skip_all"
        done; done
    else
        measure_proxy consentry "$pid" "$dir/ca.pem" "$ca_skip"
    fi
    stop_service consentry
    # Its own words about the run: warnings/errors it logged are worth reading next to the table.
    # (The full log has one line per request, hundreds of MB: only the rest is kept.)
    if [[ -s $dir/consentry.log ]]; then
        sed 's/\x1b\[[0-9;]*m//g' "$dir/consentry.log" | grep -v 'consentry::decision' >"$OUT/consentry.log"
        local n; n=$(grep -ciE ' (warn|error) ' "$OUT/consentry.log")
        ((n)) && warn "consentry logged $n WARN/ERROR lines; see $OUT/consentry.log"
        log "consentry wrote $(wc -l <"$dir/consentry.log") log lines ($(du -h "$dir/consentry.log" | cut -f1)) to stderr"
    fi
}

# ---------------------------------------------------------------------------------------------
# (3) Squid: caching off, no disk cache, ssl-bump for CONNECT (mimicking the origin certificate)
# ---------------------------------------------------------------------------------------------
bench_squid() {
    local dir=$WORK/squid
    command -v squid >/dev/null || { record_all_skip squid "squid not installed (--install-deps)"; return; }
    local certgen=/usr/lib/squid/security_file_certgen https_skip=""
    [[ -x $certgen ]] || https_skip="squid without ssl-bump support (install squid-openssl)"
    mkdir -p "$dir"
    mk_ca squid/ca "Squid bench CA" || die "openssl: cannot make Squid's CA"
    "$certgen" -c -s "$dir/ssl_db" -M 16MB >/dev/null 2>&1
    chown -R proxy:proxy "$dir" 2>/dev/null
    cat >"$dir/squid.conf" <<EOF
# Loopback-only forward proxy; everything a benchmark does not need is off.
http_port 127.0.0.1:$PROXY_PORT ssl-bump tls-cert=$dir/ca.pem tls-key=$dir/ca.key generate-host-certificates=on dynamic_cert_mem_cache_size=16MB
sslcrtd_program $certgen -s $dir/ssl_db -M 16MB
sslcrtd_children 4 startup=1 idle=1
# stare (default): peek at the client hello, stare at the server certificate, then bump; the
# minted leaf mimics the origin's (including its IP SAN), which a client verifying 127.0.0.1
# needs. Squid then pins one origin connection to each client connection.
acl step1 at_step SslBump1
acl step2 at_step SslBump2
$(if [[ $SQUID_BUMP == stare ]]; then
    printf 'ssl_bump peek step1\nssl_bump stare step2\nssl_bump bump all\n'
else
    printf '# client-first: bump straight away, mint from the CONNECT host name\nssl_bump bump all\n'
fi)
tls_outgoing_options cafile=$WORK/origin-ca.pem
http_access allow all
# caching off: nothing stored, no disk cache (no cache_dir at all), no memory cache
cache deny all
cache_mem 0 MB
access_log none
cache_store_log none
cache_log $dir/cache.log
pid_filename $dir/squid.pid
coredump_dir $dir
shutdown_lifetime 0 seconds
pinger_enable off
max_filedescriptors 16384
# The origin is on loopback and on a non-standard port; nothing to restrict in a benchmark.
via on
forwarded_for on
EOF
    chown proxy:proxy "$dir/squid.conf"
    if ! squid -k parse -f "$dir/squid.conf" >"$dir/parse.log" 2>&1; then
        record_all_skip squid "squid -k parse failed: $(grep -iE 'fatal|error' "$dir/parse.log" | head -3 | tr '\n' ' ')"
        return
    fi
    # -N: no daemon and no SMP kid, so the pid we started is the process serving requests.
    start_service squid "$PROXY_CPU" "$dir" "$dir/stdout.log" squid -N -f "$dir/squid.conf"
    local pid=$STARTED
    if ! wait_port "$PROXY_PORT" "$pid" 20; then
        record_all_skip squid "squid did not start: $(tail -n 5 "$dir/cache.log" | tr '\n' ' ')"
        stop_service squid; return
    fi
    log "squid up (pid $pid, core $PROXY_CPU)"
    measure_proxy squid "$pid" "$dir/ca.pem" "$https_skip"
    stop_service squid
}

# ---------------------------------------------------------------------------------------------
# (4) Apache Traffic Server: forward proxy, HTTP caching off. HTTPS rows are skipped: ATS can
# only tunnel CONNECT blindly; it has no ssl-bump equivalent (the experimental certifier plugin
# mints certificates by SNI for ATS's own TLS ports and needs CONNECT re-routed into them; with
# IP-literal URLs clients send no SNI), so there is no intercepted-HTTPS configuration to compare.
# ---------------------------------------------------------------------------------------------
ATS_HTTPS_SKIP="Traffic Server has no TLS interception for CONNECT (blind tunnels only)"
bench_trafficserver() {
    local dir=$WORK/ats
    command -v traffic_server >/dev/null || { record_all_skip trafficserver "traffic_server not installed (--install-deps)"; return; }
    mkdir -p "$dir/run" "$dir/log" "$dir/cache" "$dir/var"
    cp -r /etc/trafficserver "$dir/etc"
    # A private runroot: config, logs, pid and cache paths all inside the scratch directory.
    cat >"$dir/runroot.yaml" <<EOF
prefix: $dir
exec_prefix: /usr
bindir: /usr/bin
sbindir: /usr/sbin
sysconfdir: $dir/etc
datadir: $dir/cache
includedir: /usr/include
libdir: /usr/lib/trafficserver
libexecdir: /usr/lib/trafficserver/modules
localstatedir: $dir/var
runtimedir: $dir/run
logdir: $dir/log
cachedir: $dir/cache
EOF
    : >"$dir/etc/storage.config"   # no cache storage at all
    : >"$dir/etc/remap.config"
    : >"$dir/etc/plugin.config"
    cat >"$dir/etc/records.config" <<EOF
CONFIG proxy.config.http.server_ports STRING $PROXY_PORT:ipv4:ip-in=127.0.0.1
# forward proxy: no remap rule needed, not a reverse proxy
CONFIG proxy.config.url_remap.remap_required INT 0
CONFIG proxy.config.reverse_proxy.enabled INT 0
# caching off
CONFIG proxy.config.http.cache.http INT 0
CONFIG proxy.config.http.wait_for_cache INT 0
# one event thread: the process is pinned to one core, like the others (Squid is single-
# threaded; Consentry's runtime sizes itself from the affinity mask). No hwloc affinity, which
# would override taskset.
CONFIG proxy.config.exec_thread.autoconfig INT 0
CONFIG proxy.config.exec_thread.limit INT 1
CONFIG proxy.config.exec_thread.affinity INT 0
CONFIG proxy.config.accept_threads INT 0
CONFIG proxy.config.task_threads INT 1
CONFIG proxy.config.log.logging_enabled INT 0
CONFIG proxy.config.diags.debug.enabled INT 0
CONFIG proxy.config.admin.user_id STRING #-1
CONFIG proxy.config.net.connections_throttle INT 30000
CONFIG proxy.config.http.insert_request_via_str INT 1
EOF
    start_service trafficserver "$PROXY_CPU" "$dir" "$dir/stdout.log" \
        traffic_server --run-root="$dir/runroot.yaml"
    local pid=$STARTED
    if ! wait_port "$PROXY_PORT" "$pid" 30; then
        record_all_skip trafficserver "traffic_server did not start: $(tail -n 5 "$dir/stdout.log" "$dir/log/diags.log" 2>/dev/null | tr '\n' ' ' | tail -c 400)"
        stop_service trafficserver; return
    fi
    log "traffic server up (pid $pid, core $PROXY_CPU)"
    measure_proxy trafficserver "$pid" "" "$ATS_HTTPS_SKIP"
    stop_service trafficserver
}

record_all_skip() {   # record_all_skip CONFIG REASON
    local mode size
    for mode in ${MODES//,/ }; do for size in ${SIZES//,/ }; do
        [[ $mode == https-newconn && $size != 1k ]] && continue
        record_skip "$1" "$mode" "$size" "$2"
    done; done
}

# ---------------------------------------------------------------------------------------------
# Run, one proxy at a time (never two under load together), then the report
# ---------------------------------------------------------------------------------------------
START=$(date +%s)
want "$CONFIGS" consentry && build_consentry
# From here on this script and everything it runs stay on the load core unless pinned elsewhere,
# so that not even our own awk/curl bookkeeping lands on the proxy's core.
taskset -p -c "$LOAD_CPU" $$ >/dev/null || warn "cannot pin the script to core $LOAD_CPU"
start_origin
want "$CONFIGS" direct        && bench_direct
want "$CONFIGS" consentry     && bench_consentry
want "$CONFIGS" squid         && bench_squid
want "$CONFIGS" trafficserver && bench_trafficserver
stop_service origin

MACHINE="$(nproc --all) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
VERSIONS="nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'); wrk $(wrk -v 2>&1 | awk 'NR==1 { print $2 }'); oha $(oha --version 2>/dev/null | awk '{ print $2 }'); squid $(squid -v 2>/dev/null | awk 'NR==1 { print $4 }'); trafficserver $(traffic_server --version 2>/dev/null | awk 'NR==1 { print $3 }')"
# Consentry is a moving target: name the build by its binary's time as well as its version.
[[ -x $CONSENTRY_BIN ]] && VERSIONS="consentry $("$CONSENTRY_BIN" --version 2>/dev/null | awk 'NR==1 { print $2 }') (binary of $(date -u -r "$CONSENTRY_BIN" +%Y-%m-%dT%H:%MZ)); $VERSIONS"

python3 "$(dirname "${BASH_SOURCE[0]}")/report.py" "$RESULTS" \
    --date "$(date -u +%Y-%m-%dT%H:%MZ)" --machine "$MACHINE" --versions "$VERSIONS" \
    --method "${WARMUP}s warm-up + ${DURATION}s measured per row, $CONNS connections; proxy on core $PROXY_CPU, origin + load generator on core $LOAD_CPU" \
    >"$OUT/report.md" || die "report failed"
cat "$OUT/report.md"
log "done in $(( $(date +%s) - START ))s; report: $OUT/report.md, raw rows: $RESULTS"
