#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests use (curl, openssl,
# Python requests) when missing, then builds once and runs every unit and integration test.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v python3 >/dev/null || missing+=(python3 python3-pip)
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -c 'import requests' 2>/dev/null || python3 -m pip install --quiet requests

cargo test --locked "$@"
