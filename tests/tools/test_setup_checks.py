"""make setup's pre-flight check names what to install."""

import os
import subprocess
import sys

from conftest import ROOT

CHECK = os.path.join(ROOT, "scripts", "check_build_env.sh")


def _check(env_extra, python=sys.executable):
    env = {**os.environ, **env_extra}
    return subprocess.run(["bash", CHECK, python], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_passes_here():
    assert _check({}).returncode == 0


def test_missing_compiler_is_named():
    p = _check({"CXX": "no-such-compiler-xyz"})
    assert p.returncode != 0 and "no-such-compiler-xyz" in p.stdout and "build-essential" in p.stdout


def test_missing_python_is_named():
    p = _check({}, python="/nonexistent/python3")
    assert p.returncode != 0 and "PYTHON=" in p.stdout
