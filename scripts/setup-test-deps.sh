#!/usr/bin/env bash
# Installs what the client tests (controllers-example/tests/{sse_clients,ws_clients,
# autobahn}.rs, tests/redis.rs) need beyond the Rust toolchain: Debian's chromium
# and redis-server, the npm
# packages locked in tests/js/package-lock.json, and the Autobahn case runner
# kosoku (PyPI, pinned) in a venv at .test-deps/venv. Idempotent: a second run
# installs nothing.
# Runs unattended (CI=true, no stdin); fails loudly if anything is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "setup-test-deps: $*"; }
die() {
    echo "setup-test-deps: error: $*" >&2
    exit 1
}

# apt needs root: as root run directly, otherwise through non-interactive sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        die "need root or sudo to run: $*"
    fi
}

# --- Chromium (Debian's package; npm's browser downloads do not work here) ---
CHROMIUM=/usr/bin/chromium
if version=$("$CHROMIUM" --version 2>/dev/null); then
    say "chromium present: $version"
else
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install Debian's chromium by hand"
    say "installing chromium with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
    version=$("$CHROMIUM" --version 2>/dev/null) || die "chromium installed but '$CHROMIUM --version' fails"
    say "chromium installed: $version"
fi

# --- redis-server (Debian's package) for the Redis broker's tests ---
if version=$(redis-server --version 2>/dev/null); then
    say "redis-server present: $version"
else
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install Debian's redis-server by hand"
    say "installing redis-server with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    # The package's own service is not wanted: tests start their own servers
    # on free loopback ports (policy-rc.d would be the Debian way; in a
    # container without systemd nothing starts anyway).
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server
    version=$(redis-server --version 2>/dev/null) || die "redis-server installed but 'redis-server --version' fails"
    say "redis-server installed: $version"
fi

# --- npm packages for tests/js ---
command -v node >/dev/null 2>&1 || die "node not found (Node.js 20+ is needed)"
command -v npm >/dev/null 2>&1 || die "npm not found"
JS=tests/js
[ -f "$JS/package-lock.json" ] || die "$JS/package-lock.json is missing"
# The stamp lives inside node_modules, so deleting node_modules invalidates it.
STAMP="$JS/node_modules/.rill-deps-stamp"
want=$(cat "$JS/package.json" "$JS/package-lock.json" <(node --version) | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    say "tests/js/node_modules up to date"
else
    say "installing npm packages in $JS (npm ci)"
    (cd "$JS" && npm ci --no-audit --no-fund) || die "npm ci failed in $JS"
    echo "$want" >"$STAMP"
    say "npm packages installed"
fi

# --- kosoku (the Autobahn testsuite's cases on Python 3) in a project venv ---
KOSOKU_VERSION=0.1.0
VENV=.test-deps/venv
command -v python3 >/dev/null 2>&1 || die "python3 not found (Python 3.9+ is needed)"
if [ -x "$VENV/bin/kosoku" ] && [ "$("$VENV/bin/python" -m pip show kosoku 2>/dev/null | sed -n 's/^Version: //p')" = "$KOSOKU_VERSION" ]; then
    say "kosoku $KOSOKU_VERSION present in $VENV"
else
    say "installing kosoku==$KOSOKU_VERSION in $VENV"
    mkdir -p .test-deps
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "kosoku==$KOSOKU_VERSION" ||
        die "pip install kosoku==$KOSOKU_VERSION failed"
    [ -x "$VENV/bin/kosoku" ] || die "kosoku installed but $VENV/bin/kosoku is missing"
    say "kosoku installed"
fi

say "done"
