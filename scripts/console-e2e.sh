#!/usr/bin/env bash
# The console's end-to-end browser test: builds tenantsync, creates two tenants, a read-only credential and a
# topology (fabrikam -> contoso, SyncAll off) on a fresh SQLite file with the CLI, starts `tenantsync serve` on a
# free port, then runs scripts/console-e2e.py (Playwright for Python driving Debian's Chromium), which saves a
# screenshot of each page to docs/console/. Last line: "console e2e: all checks passed".
# Usage: scripts/console-e2e.sh [SCREENSHOT_DIR]   (default docs/console)
# Needs: HARNESS_VENV with playwright (pip install playwright==1.65.3, as .ci/run does) and /usr/bin/chromium
# (apt-get install chromium; Playwright cannot download its own browsers here, so it is given this one).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shots=${1:-$root/docs/console}
python=${HARNESS_VENV:?set HARNESS_VENV to a venv with playwright}/bin/python
if [ -z "${TENANTSYNC_BIN:-}" ]; then
    (cd "$root" && cargo build --quiet --bin tenantsync)
    bin=${CARGO_TARGET_DIR:-$root/target}/debug/tenantsync
else
    bin=$TENANTSYNC_BIN
fi
work=$(mktemp -d)
database="sqlite://$work/console.db"
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" tenant create --name fabrikam --display-name Fabrikam --database "$database" --json --log warn > "$work/source.json"
"$bin" tenant create --name contoso --display-name Contoso --database "$database" --json --log warn > "$work/target.json"
"$bin" app credential create --tenant fabrikam --name "console reader" \
    --roles Directory.Read.All,Policy.Read.All,AuditLog.Read.All --database "$database" --json --log warn > "$work/reader.json"
"$bin" topology create --shape outbound --tenants fabrikam,contoso --sync-all false --database "$database" --log warn

"$bin" serve --listen 127.0.0.1:0 --database "$database" --log "${CONSOLE_E2E_LOG:-warn}" > "$work/serve.out" 2> "$work/serve.log" &
server_pid=$!
for _ in $(seq 1 200); do
    grep -q '^listening on ' "$work/serve.out" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log"; echo "server exited"; exit 1; }
    sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$work/serve.out" | head -n 1)
[ -n "$url" ] || { echo "server did not start"; cat "$work/serve.log"; exit 1; }
echo "console e2e against $url/console (screenshots in ${shots#$root/})"
"$python" "$root/scripts/console-e2e.py" "$url" "$work/source.json" "$work/target.json" "$work/reader.json" "$shots" || {
    echo "--- server log"; tail -n 60 "$work/serve.log"; exit 1; }
