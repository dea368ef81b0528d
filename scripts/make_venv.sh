#!/usr/bin/env bash
# Create or update the project's virtual environment.
#
# The venv counts as usable only once the stamp file exists; the stamp is written as the very last
# step, so an interrupted or failed set-up is never trusted by a later run: it is rebuilt from scratch.
set -euo pipefail

python_bin=${1:-python3}
venv=${2:-.venv}
stamp="$venv/.lmbasics-ready"

fail() { echo "make_venv: error: $*" >&2; exit 1; }

# The Makefile puts the venv first on PATH; the interpreter that builds the venv must come from outside it.
venv_bin="$(cd "$(dirname "$venv")" && pwd)/$(basename "$venv")/bin"
PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -v -x -F "$venv_bin" | paste -sd: -)

command -v "$python_bin" >/dev/null 2>&1 || fail "'$python_bin' not found: install Python 3.10 or newer (3.11 recommended), or run 'make PYTHON=/path/to/python3 ...'"
"$python_bin" - <<'PY' || fail "Python 3.10 or newer is required, found $("$python_bin" --version 2>&1); run 'make PYTHON=/path/to/python3.11 ...'"
import sys
sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY

if [ ! -f "$stamp" ]; then
    [ -e "$venv" ] && echo "make_venv: $venv has no ready stamp (an earlier set-up did not finish): rebuilding it"
    rm -rf "$venv"
    "$python_bin" -m venv "$venv" || { rm -rf "$venv"; fail "could not create $venv with $python_bin -m venv (on Debian/Ubuntu: apt-get install python3-venv)"; }
else
    echo "make_venv: requirements changed: updating $venv"
    rm -f "$stamp"
fi

trap 'echo "make_venv: error: set-up interrupted; $venv is left unstamped and will be rebuilt next time" >&2' INT TERM

pip=("$venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet -r requirements.txt \
    || fail "package install failed (see pip's message above); $venv is left unstamped and will be rebuilt next time"
"${pip[@]}" install --quiet --no-deps --no-build-isolation -e . \
    || fail "installing the lmbasics package (pip install -e .) failed; see pip's message above"
"$venv/bin/python" -c "import lmbasics, torch, nbval, jupyter_book" \
    || fail "the installed environment cannot import its core packages"

# The venv's own "python3" kernel carries the pinned CPU kernels (lmbasics.PINNED_KERNELS), so that
# JupyterLab and nbconvert reproduce the committed outputs bit for bit, however they are started.
pins=$("$venv/bin/python" -c "import lmbasics; print(' '.join(f'--env {k} {v}' for k, v in lmbasics.PINNED_KERNELS.items()))") \
    || fail "could not read lmbasics.PINNED_KERNELS"
# shellcheck disable=SC2086  # $pins is a list of words on purpose
"$venv/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (lmbasics)" $pins >/dev/null \
    || fail "installing the notebook kernel spec (ipykernel install) failed"

touch "$stamp"
echo "make_venv: $venv is ready ($("$venv/bin/python" --version), torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)'))"
