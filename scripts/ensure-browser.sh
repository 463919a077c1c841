#!/bin/sh
# Installs the headless browser the end-to-end tests drive (Debian's chromium, driven by
# Playwright through executable_path: no browser download) and a small CJK font so Chinese
# text renders in screenshots; and wrk, the load generator tests/benchmarks drives (required in CI).
# Does nothing when all are already present.
set -eu

need_browser=0
need_font=0
need_wrk=0
[ -x /usr/bin/chromium ] || need_browser=1
fc-list 2>/dev/null | grep -qi "wqy\|noto sans cjk" || need_font=1
command -v wrk >/dev/null 2>&1 || need_wrk=1

if [ "$need_browser" = 0 ] && [ "$need_font" = 0 ] && [ "$need_wrk" = 0 ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "ensure-browser: /usr/bin/chromium is missing and this user cannot run apt-get" >&2
        echo "ensure-browser: run as root: apt-get update && apt-get install -y chromium fonts-wqy-microhei wrk" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-wqy-microhei fontconfig wrk
/usr/bin/chromium --version
