#!/bin/sh
# Throughput of attack DIR --queue against a local run: PGD on N generated faces (default 2000),
# locally with --workers 2, then over a Redis on a loopback port with 1 and 2 worker processes of
# one thread each. Prints images per second of each. Needs redis-server (Debian's redis-server)
# and a build (npm run build). Usage: sh bench/queue.sh [N]
set -eu
n=${1:-2000}
root=$(cd "$(dirname "$0")/.." && pwd)
cli="node $root/dist/cli/main.js"
dir=$(mktemp -d)
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' --appendonly yes --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
trap 'kill $(cat "$dir/redis.pid") 2>/dev/null; rm -rf "$dir"' EXIT
cd "$dir"
$cli dataset --out faces --count "$n" >/dev/null 2>&1
rate() { node -e "console.log(($n / (($2 - $1) / 1e9)).toFixed(1))"; }
start=$(date +%s%N); $cli attack faces --method pgd --quiet --out local --workers 2 >/dev/null; end=$(date +%s%N)
echo "local --workers 2: $(rate "$start" "$end") images/s"
for workers in 1 2; do
  pids=""
  for i in $(seq "$workers"); do $cli worker --queue "redis://127.0.0.1:$port" --workers 1 --quiet & pids="$pids $!"; done
  start=$(date +%s%N); $cli attack faces --method pgd --quiet --out "queued$workers" --queue "redis://127.0.0.1:$port" >/dev/null; end=$(date +%s%N)
  echo "queue, $workers worker process(es) of 1 thread: $(rate "$start" "$end") images/s"
  kill -INT $pids; wait $pids 2>/dev/null || true
done
