"""The package as a user installs it: a wheel built from the sources, installed into a
fresh venv, runs hello_world through `occlum new/build/run` (issue 7, section 6).

The venv is made with --system-site-packages: the dependencies (doit, unicorn,
cryptography, ...) come from the interpreter running the tests, installed by .ci/setup,
so the test needs no second download of ~40 MB and takes seconds. What it tests is the
wheel's own files: it is installed with --ignore-installed into the venv (whose
site-packages come first), every command runs from a folder outside the checkout without
PYTHONPATH, and the test checks that occlum_tasks and its templates/schemas are the
venv's. Building the wheel uses pip's build isolation, which fetches the build backend
(setuptools, as pyproject.toml asks) from the package index, as `pip install .` does."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "setup.py", "README.md", "occlum_tasks", "templates", "schemas")


def run(cmd, cwd, env, timeout=600):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.slow
def test_a_wheel_installed_in_a_fresh_venv_runs_hello_world(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "OCCLUM_LOG_LEVEL")}
    env["OCCLUM_PLATFORM_SECRET_FILE"] = str(tmp_path / "platform" / "secret")
    src = tmp_path / "src"      # the sources only: no egg-info, no build/, no caches
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO / name, src / name)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps",
         "-w", tmp_path / "dist", f"{src}/"], tmp_path, env)
    wheel, = (tmp_path / "dist").glob("occlum_tasks-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv],
        tmp_path, env)
    python, bindir = venv / "bin" / "python", venv / "bin"
    run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
         "--ignore-installed", wheel], tmp_path, env)
    shutil.rmtree(src)          # nothing can come from the copied sources any more

    work = tmp_path / "work"
    work.mkdir()
    where = run([python, "-c", "import occlum_tasks, occlum_tasks.paths as p; "
                 "print(occlum_tasks.__file__); print(p.TEMPLATES_DIR); print(p.SCHEMAS_DIR)"],
                work, env).splitlines()
    site = venv.resolve()
    assert all(Path(w).resolve().is_relative_to(site) for w in where), where
    assert (Path(where[1]) / "Occlum.json.j2").is_file()
    assert (Path(where[2]) / "occlum.schema.json").is_file()

    run([bindir / "occlum-gcc", "-o", work / "hello_world", REPO / "tests/programs/hello_world.c"],
        work, env)
    run([bindir / "occlum", "new", "inst"], work, env)
    inst = work / "inst"
    shutil.copy(work / "hello_world", inst / "image/bin/hello_world")
    run([bindir / "occlum", "build"], inst, env)
    assert run([bindir / "occlum", "run", "/bin/hello_world"], inst, env) == "Hello World\n"
    # and what ran was the venv's runtime: it is what the build measured
    manifest = (inst / "build/lib/runtime.manifest").read_text()
    assert "occlum_tasks/libos/enclave.py" in manifest
