# Shared helpers for the project's scripts. Source it: . "$(dirname "$0")/lib.sh"
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="/opt/swift/usr/bin:$PATH"

log() { printf '==> %s\n' "$*" >&2; }

# ensure_apt PACKAGE...: installs the Debian packages that are missing (apt-get update once).
ensure_apt() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ ! -f /tmp/.mcp-session-storage-apt-updated ]; then
        $sudo apt-get update -qq && touch /tmp/.mcp-session-storage-apt-updated
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ensure_pip MODULE SPEC: installs the PyPI package SPEC unless python3 can import MODULE.
ensure_pip() {
    python3 -c "import $1" 2>/dev/null && return 0
    log "installing PyPI package: $2"
    python3 -m pip install -q "$2"
}

# ensure_swift: fails with a clear message when no Swift toolchain is on the PATH.
ensure_swift() {
    command -v swift >/dev/null || { echo "swift not found: install Swift 6.1 or later (https://swift.org/install)" >&2; exit 1; }
}
