#!/usr/bin/env bash
# Tidy checks that the compiler does not make: dependency direction between crates, module docs, leftovers.
# Run from the repository root. Prints every problem, exits 1 if there was any.
set -uo pipefail
status=0
fail() { echo "tidy: $*"; status=1; }

# The pure crates never depend on a runtime, a web framework, a database driver or an HTTP client.
forbidden='^(tokio|axum|hyper|sqlx|sqlx-core|rusqlite|reqwest|tower|tower-http) '
for crate in tenantsync-model tenantsync-expr tenantsync-graph tenantsync-store tenantsync-scim tenantsync-engine tenantsync-guardrails; do
    if ! cargo metadata --format-version 1 --no-deps >/dev/null 2>&1; then fail "cargo metadata failed"; break; fi
    found=$(cargo tree -p "$crate" -e normal --prefix none 2>/dev/null | grep -E "$forbidden" | sort -u)
    [ -n "$found" ] && fail "$crate must stay pure but depends on: $(echo $found | tr '\n' ' ')"
done
# The directory talks to storage through the Store trait only, and knows nothing about HTTP.
found=$(cargo tree -p tenantsync-directory -e normal --prefix none 2>/dev/null | grep -E '^(axum|hyper|sqlx|rusqlite|reqwest|tenantsync-store-sqlite|tenantsync-store-postgres|tenantsync-api) ' | sort -u)
[ -n "$found" ] && fail "tenantsync-directory depends on: $(echo $found | tr '\n' ' ')"
# Nothing above the directory reaches its raw store: job state goes through the engine's SyncRepo.
found=$(grep -rn 'directory\.store()\|\.store()\.begin' crates/api/src crates/connectors/src crates/cli/src 2>/dev/null)
[ -n "$found" ] && fail "use SyncRepo or a Directory method instead of the directory's raw store: $found"
# The engine reads time and draws ids only through what it is given (its clippy.toml lists the methods).
[ -f crates/engine/clippy.toml ] || fail "crates/engine/clippy.toml (disallowed wall clock and random ids) is missing"
# Only the binary names concrete backends.
for crate in tenantsync-api tenantsync-directory; do
    found=$(cargo tree -p "$crate" -e normal --prefix none 2>/dev/null | grep -E '^tenantsync-store-(sqlite|postgres) ' | sort -u)
    [ -n "$found" ] && fail "$crate must not name a concrete store backend: $found"
done
# One TLS provider: ring, never aws-lc; no OpenSSL.
cargo tree -i aws-lc-rs >/dev/null 2>&1 && fail "aws-lc-rs is in the dependency tree"
cargo tree -i openssl-sys >/dev/null 2>&1 && fail "openssl-sys is in the dependency tree"

# Every module of the library and binary sources starts with a //! paragraph.
while IFS= read -r file; do
    first=$(grep -v '^\s*$' "$file" | head -n 1)
    case "$first" in
        '//!'*) ;;
        *) fail "$file does not start with a //! module doc" ;;
    esac
done < <(find crates -path '*/src/*' -name '*.rs' | sort)

# SQLite prepares a statement again on every execution when its planner read a bound parameter: a bound LIMIT or
# OFFSET does that (store-sqlite's conn::Sql::push says why); write the count as a literal.
if grep -rnE "(LIMIT|OFFSET) \?|(LIMIT|OFFSET) \"\)\.bind" crates/store-sqlite/src; then
    fail "store-sqlite: write LIMIT/OFFSET counts as literals, not bound parameters (see conn::Sql::push)"
fi
# No debugging leftovers.
if grep -rnE '\bdbg!\(|\btodo!\(|\bunimplemented!\(' crates --include='*.rs'; then
    fail "remove dbg!/todo!/unimplemented! above"
fi
exit $status
