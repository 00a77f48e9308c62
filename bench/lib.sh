# Steps the bench/ scripts share: the release module and the vendored nginx it was built for,
# free loopback ports, nginx instances (1 worker) in temporary prefixes, stopped on exit.
# Source it after `set -euo pipefail` and `cd` to the repository root; set `bench_name` first
# for the messages. The names match bench/pipeline's own helpers, so it can switch to these.

bench_name=${bench_name:-bench}
pids=() # nginx masters started by start_nginx

# Builds the release module; sets $nginx and $module. Build messages go to $1/build-module.json.
build_module() {
    echo "$bench_name: building the release module" >&2
    cargo build --locked --release --lib --message-format=json-render-diagnostics \
        >"$1/build-module.json"
    # Where nginx-sys built nginx: the binary the module was built for (as scripts/demo finds it).
    nginx=$(grep '"reason":"build-script-executed"' "$1/build-module.json" |
        grep '"package_id":"[^"]*nginx-sys' |
        sed -n 's/.*"out_dir":"\([^"]*\)".*/\1/p' | tail -n 1)/objs/nginx
    module=$(grep '"reason":"compiler-artifact"' "$1/build-module.json" |
        grep -o '"[^"]*libngx_http_honeytrap_module\.so"' | tr -d '"' | tail -n 1)
    [ -x "$nginx" ] || { echo "$bench_name: nginx not built: '$nginx'" >&2; return 1; }
    [ -f "$module" ] || { echo "$bench_name: module not built: '$module'" >&2; return 1; }
}

# A loopback port nothing answers on now, not handed out before in this run.
used_ports=" "
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        [[ "$used_ports" == *" $p "* ]] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            used_ports+="$p "
            echo "$p"
            return
        fi
    done
}

wait_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "$bench_name: nothing listens on port $1" >&2
    return 1
}

write_conf() { # prefix, load_module line, http body
    mkdir -p "$1/conf" "$1/logs"
    cat >"$1/conf/nginx.conf" <<EOF
$2
daemon off;
master_process on;
worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log notice;
events { worker_connections 1024; }
http {
    access_log off;
$3
}
EOF
}

# Another nginx binary (e.g. Debian's) may be given; `-e` keeps its startup log out of the
# compiled-in path.
start_nginx() { # prefix [binary]
    local bin=${2:-$nginx}
    "$bin" -p "$1/" -c "$1/conf/nginx.conf" -e "$1/logs/error.log" -t -q
    "$bin" -p "$1/" -c "$1/conf/nginx.conf" -e "$1/logs/error.log" </dev/null >/dev/null \
        2>"$1/logs/stderr.log" &
    pids+=($!)
}

# Graceful quit (the worker joins its shipper), then whatever is left after 5 s is killed.
stop_nginx_all() {
    local pid alive
    for pid in "${pids[@]}"; do kill -QUIT "$pid" 2>/dev/null || true; done
    for _ in $(seq 50); do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" -eq 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    pids=()
}

# Fatal lines of an nginx prefix's logs (empty when none).
fatal_lines() { # prefix
    grep -hE '\[(alert|emerg)\]|panicked|exited on signal' \
        "$1/logs/error.log" "$1/logs/stderr.log" || true
}

# wrk's latency (e.g. 812.00us, 1.52ms, 2.01s) in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}
