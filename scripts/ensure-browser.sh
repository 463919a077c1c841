#!/bin/sh
# Installs what the tests drive outside Python: the headless browser of the end-to-end tests
# (Debian's chromium, driven by Playwright through executable_path: no browser download), a small
# CJK font so Chinese text renders in screenshots, and wrk, the HTTP load generator the benchmark
# test runs (in CI a skipped test fails the run, so it must be there). Does nothing when all are present.
set -eu

need_browser=0
need_font=0
need_wrk=0
[ -x /usr/bin/chromium ] || need_browser=1
command -v wrk >/dev/null 2>&1 || need_wrk=1
fc-list 2>/dev/null | grep -qi "wqy\|noto sans cjk" || need_font=1

if [ "$need_browser" = 0 ] && [ "$need_font" = 0 ] && [ "$need_wrk" = 0 ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "ensure-browser: chromium, the CJK font or wrk is missing and this user cannot run apt-get" >&2
        echo "ensure-browser: run as root: apt-get update && apt-get install -y chromium fonts-wqy-microhei wrk" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-wqy-microhei fontconfig wrk
/usr/bin/chromium --version
command -v wrk
