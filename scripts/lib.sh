# Shared helpers for the project's scripts. Source it: . "$(dirname "$0")/lib.sh"
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="/opt/swift/usr/bin:$PATH"
# The project's Python environment (git-ignored): the PyPI packages the scripts need go here,
# never into the system's interpreter.
VENV="$ROOT/.venv"

log() { printf '==> %s\n' "$*" >&2; }

# help_if_asked "$@": prints the script's header comment (its usage) and exits, for -h/--help.
help_if_asked() {
    case "${1:-}" in
    -h | --help)
        sed -n '2,/^[^#]/{/^#/!q;s/^# \{0,1\}//;p}' "$0"
        exit 0
        ;;
    esac
}

# close_inherited_descriptors: for scripts that start daemons, which must not inherit the
# caller's descriptors: a caller that waits for the script through a pipe (Foundation's Process
# does) would otherwise wait for the daemon.
close_inherited_descriptors() {
    local fd
    for fd in $(ls /proc/$$/fd); do
        [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null || true
    done
}

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

# ensure_venv MODULE=SPEC...: a virtual environment in .venv with each PyPI package SPEC whose
# MODULE does not import yet; puts it first on the PATH, so `python3` is the environment's.
ensure_venv() {
    if [ ! -x "$VENV/bin/python3" ]; then
        log "creating the Python environment in .venv"
        python3 -m venv "$VENV" 2>/dev/null || { ensure_apt python3-venv && python3 -m venv "$VENV"; }
    fi
    export PATH="$VENV/bin:$PATH"
    local pair
    for pair in "$@"; do
        python3 -c "import ${pair%%=*}" 2>/dev/null && continue
        log "installing PyPI package into .venv: ${pair#*=}"
        python3 -m pip install -q --disable-pip-version-check "${pair#*=}"
    done
}

# ensure_swift: fails with a clear message without Swift 6.2 or later on the PATH.
ensure_swift() {
    command -v swift >/dev/null || { echo "swift not found: install Swift 6.2 or later (https://swift.org/install)" >&2; exit 1; }
    local version
    version=$(swift --version 2>/dev/null | sed -n 's/.*Swift version \([0-9]*\.[0-9]*\).*/\1/p' | head -1)
    if [ -n "$version" ] && [ "$(printf '%s\n6.2\n' "$version" | sort -V | head -1)" != "6.2" ]; then
        echo "Swift $version found; this package needs Swift 6.2 or later (its dependencies use tools version 6.2)" >&2
        exit 1
    fi
}

# elapsed SECONDS: "1 min 23 s"
elapsed() { local s=$1; if [ "$s" -ge 60 ]; then echo "$((s / 60)) min $((s % 60)) s"; else echo "$s s"; fi; }
