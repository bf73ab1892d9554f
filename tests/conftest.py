"""Shared fixtures. compile_program builds tests/programs/* with occlum-gcc/g++,
cached by content under tests/.cache so that reruns are instant (DESIGN.md section 9)."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
PROGRAMS = TESTS / "programs"
CACHE = TESTS / ".cache"
CXX_SUFFIXES = {".cc", ".cpp", ".cxx", ".C"}


@pytest.fixture(scope="session")
def compile_program():
    from occlum_tasks.toolchain.gcc import fingerprint
    wrapper = fingerprint()  # once per session: it hashes the wrapper's sources

    def compile_(source_name: str, *, static=False, extra_args=()) -> Path:
        src = PROGRAMS / source_name
        cxx = src.suffix in CXX_SUFFIXES
        flags = (["-static-pie"] if static else []) + [str(a) for a in extra_args]
        key = hashlib.sha256(src.read_bytes() + json.dumps([flags, cxx, wrapper]).encode())
        out = CACHE / key.hexdigest()[:20] / src.stem
        if out.exists():
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{src.stem}.{os.getpid()}.tmp")
        # sys.executable -m: works whether or not the console scripts are on PATH
        cmd = [sys.executable, "-m", "occlum_tasks.toolchain.gcc", *(["--cxx"] if cxx else []),
               "-o", str(tmp), str(src), *flags]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.fail(f"compiling {source_name} failed ({proc.returncode}):\n{proc.stderr}",
                        pytrace=False)
        os.replace(tmp, out)
        return out

    return compile_
