# Steps the bench/ scripts share: the release module and the vendored nginx it was built for,
# free loopback ports, nginx instances (1 worker) in temporary prefixes, stopped on exit;
# and the CRS workload (page, rules file, `headers`, `benign_path`, `attack_path`) that
# bench/crs and bench/crs-parts measure alike (a script may set those names again after).
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

# A loopback port nothing answers on now, not handed out before in this run, below the
# kernel's ephemeral range when there is room: a port in it can be some client's (wrk's,
# curl's) source port by the time nginx binds it.
used_ports=" "
ephemeral_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
if [ "$ephemeral_low" -gt 12000 ]; then
    port_base=10000 port_span=$((ephemeral_low - 10000))
else
    port_base=20000 port_span=40000
fi
free_port() {
    local p
    while :; do
        p=$((port_base + RANDOM % port_span))
        [[ "$used_ports" == *" $p "* ]] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            used_ports+="$p "
            echo "$p"
            return
        fi
    done
}

wait_port() { # port [prefix: its error log is shown if nothing listens]
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "$bench_name: nothing listens on port $1" >&2
    if [ -n "${2:-}" ]; then
        tail -n 5 "$2/logs/error.log" "$2/logs/stderr.log" >&2 2>/dev/null || true
    fi
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

# Debian's nginx would otherwise create its temporary directories under /var/lib/nginx.
debian_temp_paths="
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;"

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

# --- The CRS workload bench/crs and bench/crs-parts share ---

# The page served: a shop's product list, 3.4 KB of HTML.
write_page() {
    cat <<'HTML'
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Products - Example Shop</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<header>
<h1>Example Shop</h1>
<nav><a href="/">Home</a> | <a href="/products.html">Products</a> | <a href="/contact.html">Contact</a> | <a href="/login.html">Sign in</a></nav>
</header>
<main>
<h2>Our products</h2>
<form action="/products.html" method="get">
<label for="q">Search</label> <input id="q" name="q" type="search">
<select name="sort"><option value="price">Price</option><option value="name">Name</option></select>
<button type="submit">Search</button>
</form>
<ul class="products">
HTML
    local i
    for i in $(seq 1 14); do
        printf '<li class="product"><a href="/products.html?id=%d"><h3>Product %d</h3></a><p>A sturdy item, number %d of our catalogue, ships in %d days.</p><span class="price">%d.99 EUR</span></li>\n' \
            "$i" "$i" "$i" $((i % 5 + 1)) $((i * 7 + 3))
    done
    cat <<'HTML'
</ul>
<p>Page 2 of 7. Prices include VAT. Free delivery from 50 EUR.</p>
</main>
<footer><p>&copy; Example Shop. <a href="/contact.html">Imprint</a> | <a href="/contact.html">Privacy</a></p></footer>
</body>
</html>
HTML
}

# A rules file with the settings issue 5 names, then the CRS. Response bodies are inspected
# unless the third argument is Off.
crs_rules_file() { # crs-setup file, rules glob [, SecResponseBodyAccess value]
    cat <<EOF
Include $1
SecRuleEngine On
SecRequestBodyAccess On
SecResponseBodyAccess ${3:-On}
SecResponseBodyMimeType text/plain text/html text/xml
SecResponseBodyLimit 524288
SecResponseBodyLimitAction ProcessPartial
Include $2
EOF
}

# A browser's request for page 2 of a listing; the attack is the same with a SQL injection.
# A host name: CRS scores a numeric Host (rule 920350), which a browser does not send.
headers=(-H 'Host: shop.example'
    -H 'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36'
    -H 'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'
    -H 'Accept-Language: en-US,en;q=0.9'
    -H 'Accept-Encoding: gzip, deflate')
benign_path='/products.html?category=books&page=2&sort=price&lang=en'
attack_path='/products.html?category=books&page=2&sort=price&q=1%27%20UNION%20SELECT%20password%20FROM%20users--'

# The median of the space-separated numbers in $1.
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{v[NR] = $1} END {
    if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
