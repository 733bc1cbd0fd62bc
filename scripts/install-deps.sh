#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, only when one is missing.
#   libdnnl-dev     oneDNN 2.x, the matrix-product backend (headers + libdnnl)
#   libncurses-dev  ncursesw with the wide-character API (the terminal UI)
#   pkg-config      SwiftPM finds ncursesw through it
#   ncurses-term    the *-direct terminfo entries (24-bit colour through ncurses)
#   tmux            end-to-end tests drive the real binary in a private tmux server
#   python3-venv    the Python tests' environment (tools/.venv, scripts/python-env.sh)
# The Swift toolchain itself (6.x) is expected on PATH.
set -euo pipefail

need=()
[ -f /usr/include/oneapi/dnnl/dnnl.h ] || need+=(libdnnl-dev)
[ -f /usr/include/ncursesw/curses.h ] || [ -f /usr/include/curses.h ] || need+=(libncurses-dev)
pkg-config --exists ncursesw 2>/dev/null || need+=(libncurses-dev pkg-config)
command -v tmux >/dev/null || need+=(tmux)
command -v python3 >/dev/null || need+=(python3)
python3 -c "import ensurepip, venv" 2>/dev/null || need+=(python3-venv)
[ -e /usr/share/terminfo/x/xterm-direct ] || [ -e /lib/terminfo/x/xterm-direct ] || need+=(ncurses-term)

if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}" >&2
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

command -v swift >/dev/null || { echo "error: swift (6.x) is not on PATH" >&2; exit 1; }
