#!/usr/bin/env bash
# Fail early, with what to install, where fairseq cannot be built.
set -euo pipefail
PY=${1:-python3}
command -v "$PY" >/dev/null || { echo "[setup] ERROR: '$PY' not found. Install Python >= 3.8 or run 'make setup PYTHON=/path/to/python3'." >&2; exit 1; }
"$PY" - <<'PYEOF' || exit 1
import sys, sysconfig, os
if sys.version_info < (3, 8):
    sys.exit("[setup] ERROR: Python %s is too old; fairseq needs >= 3.8. Run 'make setup PYTHON=python3.11'." % sys.version.split()[0])
inc = sysconfig.get_paths()["include"]
if not os.path.exists(os.path.join(inc, "Python.h")):
    sys.exit("[setup] ERROR: Python headers (Python.h) not found in %s; fairseq compiles C++ extensions. "
             "Install them, e.g. 'apt-get install python3-dev'." % inc)
try:
    import venv, ensurepip  # noqa: F401
except ImportError:
    sys.exit("[setup] ERROR: the venv module is missing; install it, e.g. 'apt-get install python3-venv'.")
PYEOF
for cc in "${CXX:-g++}" "${CC:-gcc}"; do
  command -v "$cc" >/dev/null || { echo "[setup] ERROR: C/C++ compiler '$cc' not found; fairseq builds C++ extensions. Install one, e.g. 'apt-get install build-essential'." >&2; exit 1; }
done
