#!/usr/bin/env bash
# Lint and format check (ruff, configured in pyproject.toml): the library, tests, benchmarks, scripts and the root conftest.
# Notebooks are not linted. Usage: scripts/lint.sh [path to ruff] ; `ruff format src tests benchmarks scripts` fixes formatting.
set -euo pipefail
cd "$(dirname "$0")/.."
RUFF="${1:-${RUFF:-.venv/bin/ruff}}"
PATHS=(src tests benchmarks scripts conftest.py)
"$RUFF" check "${PATHS[@]}"
"$RUFF" format --check "${PATHS[@]}"
