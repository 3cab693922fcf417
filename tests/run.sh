#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests use (curl, openssl,
# Python requests; Debian's chromium and chromium-driver and Python selenium for the dashboard's
# browser test) when missing, then builds once and runs every unit and integration test.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v python3 >/dev/null || missing+=(python3 python3-pip)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
[[ -x /usr/bin/chromedriver ]] || missing+=(chromium-driver)
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -c 'import requests' 2>/dev/null || python3 -m pip install --quiet requests
python3 -c 'import selenium' 2>/dev/null || python3 -m pip install --quiet selenium

cargo test --locked "$@"
