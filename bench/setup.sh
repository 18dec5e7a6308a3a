#!/usr/bin/env bash
# Installs what the benchmark needs: nginx and wrk from Debian, Scrapy in the
# venv (the bench extra), and generates the local site (bench/site/, ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
    apt-get update -qq && apt-get install -y -qq nginx wrk curl
fi
pip install -q -e '.[bench]'
python bench/site.py bench/site
