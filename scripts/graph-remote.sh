#!/usr/bin/env bash
# Syncs through the Graph connector between two tenantsync servers (two processes, two SQLite files, two ports):
# a job on server A whose target is a tenant on server B (local -> remote), and a job on server A whose source is a
# tenant on server B (remote -> local); each goes through create, update, disable, delete and restore, and the
# helper checks what each server holds. Needs a built target/debug/tenantsync.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${TENANTSYNC_BIN:-$root/target/debug/tenantsync}
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

# Starts `tenantsync serve` on a free port over the database $1; prints its URL.
serve() {
    local name=$1
    "$bin" serve --listen 127.0.0.1:0 --database "sqlite://$work/$name.db" --log "${GRAPH_REMOTE_LOG:-warn}" \
        > "$work/$name.out" 2> "$work/$name.log" &
    pids+=($!)
}

"$bin" tenant create --name alpha --domain alpha.example --database "sqlite://$work/a.db" --json --log warn > "$work/alpha.json"
"$bin" tenant create --name gamma --domain gamma.example --database "sqlite://$work/a.db" --json --log warn > "$work/gamma.json"
"$bin" tenant create --name beta --domain beta.example --database "sqlite://$work/b.db" --json --log warn > "$work/beta.json"
"$bin" tenant create --name delta --domain delta.example --database "sqlite://$work/b.db" --json --log warn > "$work/delta.json"
serve a
serve b
for name in a b; do
    for _ in $(seq 1 200); do grep -q '^listening on ' "$work/$name.out" 2>/dev/null && break; sleep 0.1; done
done
url_a=$(sed -n 's/^listening on //p' "$work/a.out" | head -n 1)
url_b=$(sed -n 's/^listening on //p' "$work/b.out" | head -n 1)
echo "server A (jobs; tenants alpha, gamma): $url_a"
echo "server B (remote; tenants beta, delta): $url_b"
python3 "$root/scripts/graph_remote_sync.py" "$url_a" "$work/alpha.json" "$work/gamma.json" \
    "$url_b" "$work/beta.json" "$work/delta.json" || {
    echo "--- server A log"; tail -n 40 "$work/a.log"; echo "--- server B log"; tail -n 40 "$work/b.log"; exit 1; }
