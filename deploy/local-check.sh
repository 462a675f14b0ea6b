#!/usr/bin/env bash
# The compose topology without Docker, on loopback: redis-server (AOF on, appendfsync always),
# two pushhub nodes sharing a secret, and nginx running deploy/nginx.conf (host names and paths
# rewritten for this machine). Checks /healthz, SSE and WebSocket through nginx, then runs the
# fan-out benchmark through it. Everything it starts is stopped on exit, by pid.
#
#   deploy/local-check.sh [NGINX_BINARY] [-- extra bench.fanout arguments]
#
# NGINX_BINARY defaults to `nginx` on PATH; Debian's can be used without installing it:
#   apt-get download nginx nginx-common && for f in nginx*.deb; do dpkg -x "$f" /tmp/ngx/root; done
#   deploy/local-check.sh /tmp/ngx/root/usr/sbin/nginx
set -euo pipefail
cd "$(dirname "$0")/.."

nginx_bin="${1:-nginx}"
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
py=.venv/bin/python
work="$(mktemp -d /tmp/pushhub-local-check.XXXXXX)"
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() {  # url, seconds
  for _ in $(seq $(($2 * 10))); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "local-check: $1 did not answer in $2 s" >&2; return 1
}

redis_port=$(port); node1=$(port); node2=$(port); front=$(port)
secret="$("$py" -c 'import secrets; print(secrets.token_urlsafe(48))')"
mkdir -p "$work/redis" "$work/n1" "$work/n2" "$work/nginx/logs"

redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$work/redis" --appendonly yes \
  --appendfsync always --save "" --maxmemory-policy noeviction --logfile "$work/redis/log" &
pids+=($!)
for n in 1 2; do
  p=$([ "$n" = 1 ] && echo "$node1" || echo "$node2")
  PUSHHUB_SECRET="$secret" PUSHHUB_REDIS_URL="redis://127.0.0.1:$redis_port/0" \
    PUSHHUB_DATA_DIR="$work/n$n" PUSHHUB_LOG_LEVEL=warning \
    "$py" -m pushhub serve --host 127.0.0.1 --port "$p" >"$work/n$n/log" 2>&1 &
  pids+=($!)
done
node_pids=("${pids[1]}" "${pids[2]}")

mime="$(dirname "$(dirname "$(command -v "$nginx_bin" || echo "$nginx_bin")")")/../etc/nginx/mime.types"
[ -f "$mime" ] || mime=/etc/nginx/mime.types
[ -f "$mime" ] || { echo "types { text/html html; }" >"$work/nginx/mime.types"; mime="$work/nginx/mime.types"; }
temp="client_body_temp_path $work/nginx/body; proxy_temp_path $work/nginx/proxy;"
temp="$temp fastcgi_temp_path $work/nginx/fcgi; uwsgi_temp_path $work/nginx/uwsgi;"
temp="$temp scgi_temp_path $work/nginx/scgi;"
sed -e "s/pushhub1:8000/127.0.0.1:$node1/; s/pushhub2:8000/127.0.0.1:$node2/" \
    -e "s/listen 80;/listen 127.0.0.1:$front;/" \
    -e "s/^user nginx;/# user nginx;/" \
    -e "s#/etc/nginx/mime.types#$mime#" \
    -e "s#/var/log/nginx/#$work/nginx/logs/#; s#/var/run/nginx.pid#$work/nginx/nginx.pid#" \
    -e "s#^http {#http {\n    $temp#" \
    deploy/nginx.conf >"$work/nginx/nginx.conf"
"$nginx_bin" -t -p "$work/nginx" -c "$work/nginx/nginx.conf"
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g "daemon off;" &
pids+=($!)

base="http://127.0.0.1:$front"
wait_http "http://127.0.0.1:$node1/healthz" 20
wait_http "http://127.0.0.1:$node2/healthz" 20
wait_http "$base/healthz" 10
echo "local-check: /healthz through nginx: $(curl -fsS "$base/healthz")"

token="$(PUSHHUB_SECRET="$secret" "$py" -m pushhub token create --sub local-check)"
auth=(-H "Authorization: Bearer $token" -H "Content-Type: application/json")
curl -fsS -X PUT "${auth[@]}" -d '{"title": "Local check"}' "$base/api/blogs/local-check" >/dev/null

# SSE through nginx: the snapshot, then an event published after the stream opened, must
# arrive while the stream is still open (nginx does not buffer /sse/).
curl -sN --max-time 4 "$base/sse/blogs/local-check" >"$work/sse.txt" &
sse=$!
sleep 1
curl -fsS -X POST "${auth[@]}" -d '{"body": "through nginx"}' \
  "$base/api/blogs/local-check/entries" >/dev/null
sleep 1
grep -q '"type":"event"' "$work/sse.txt" || { echo "local-check: no SSE event within 1 s" >&2; exit 1; }
echo "local-check: SSE event arrived through nginx within 1 s of the publish"
wait "$sse" || true

pid_args=()
for pid in "${node_pids[@]}"; do pid_args+=(--pid "$pid"); done
echo "local-check: fan-out benchmark through nginx (WebSocket upgrade, two nodes, Redis AOF always)"
"$py" -m bench.fanout --url "$base" --token "$(PUSHHUB_SECRET="$secret" "$py" -m pushhub token create)" \
  "${pid_args[@]}" "$@"
