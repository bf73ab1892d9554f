"""The measured runtime (runtime_manifest.py, runtime_loader.py, runtime_code_cache.py):
what `occlum run` executes inside the enclave is exactly what was hashed, and nothing
else, whatever is planted beside it.

Every test runs `occlum run` in a subprocess on a private copy of the package and of
unicorn (PYTHONPATH), so that tampering never touches the working tree or the
installed packages, and with its own platform secret (so its own code cache)."""
import importlib.util
import marshal
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from occlum_tasks.runtime_manifest import PACKAGE_DIR, unicorn_dir

MARKER = "planted code ran"


@pytest.fixture(scope="module")
def world(tmp_path_factory, compile_program):
    """(instance, env, package copy folder): an instance built by the copied package."""
    top = tmp_path_factory.mktemp("measured")
    pkg = top / "pkg"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(PACKAGE_DIR, pkg / "occlum_tasks", ignore=ignore)
    for data in ("templates", "schemas"):
        shutil.copytree(PACKAGE_DIR.parent / data, pkg / data, ignore=ignore)
    uc = unicorn_dir()
    shutil.copytree(uc, pkg / "unicorn", ignore=shutil.ignore_patterns(
        "__pycache__", "*.a", "include"))
    for info in uc.parent.glob("unicorn-*.dist-info"):
        shutil.copytree(info, pkg / info.name)
    env = dict(os.environ, PYTHONPATH=str(pkg),
               OCCLUM_PLATFORM_SECRET_FILE=str(top / "platform" / "secret"))
    env.pop("OCCLUM_LOG_LEVEL", None)
    assert occlum(top, env, "new", "inst").returncode == 0
    inst = top / "inst"
    shutil.copy(compile_program("hello_world.c"), inst / "image/bin/hello_world")
    shutil.copy(compile_program("proc_spawn.c"), inst / "image/bin/proc_spawn")
    proc = occlum(inst, env, "build")
    assert proc.returncode == 0, proc.stderr
    return inst, env, pkg


def occlum(cwd, env, *args):
    return subprocess.run([sys.executable, "-m", "occlum_tasks.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def python(cwd, env, code):
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def plant_pyc(source: Path, marker: Path) -> Path:
    """A .pyc that Python's importer takes for ``source`` (its mtime and size in the
    header) whose code does what the source does, then leaves ``marker``."""
    from importlib._bootstrap_external import _code_to_timestamp_pyc
    st = source.stat()
    text = source.read_text() + f"\nopen({str(marker)!r}, 'w').write({MARKER!r})\n"
    pyc = Path(importlib.util.cache_from_source(str(source)))
    pyc.parent.mkdir(exist_ok=True)
    pyc.write_bytes(_code_to_timestamp_pyc(compile(text, str(source), "exec"), st.st_mtime,
                                           st.st_size))
    return pyc


def refused_in_one_line(proc, what):
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout == ""                # the guest never ran
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0] == (f"occlum run: the runtime differs from the measured "
                        f"build/lib/runtime.manifest: {what} (run `occlum build` to measure "
                        "and sign it)")


@pytest.mark.parametrize("module", ["occlum_tasks/libos/enclave.py",
                                    "occlum_tasks/image/reader.py",
                                    "occlum_tasks/libos/process/clone.py",   # loaded lazily
                                    "unicorn/unicorn_py3/unicorn.py"])
def test_a_planted_pyc_is_refused_and_never_runs(world, tmp_path, module):
    inst, env, pkg = world
    marker = tmp_path / "marker"
    pyc = plant_pyc(pkg / module, marker)
    try:
        # the plant works: Python's own importer runs it
        name = module.removesuffix(".py").replace("/", ".")
        assert python(tmp_path, env, f"import {name}").returncode == 0
        assert marker.read_text() == MARKER
        marker.unlink()
        # `occlum run` refuses it before the guest runs, and never runs it
        proc = occlum(inst, env, "run", "/bin/hello_world")
        assert (proc.returncode, proc.stdout) == (1, ""), proc.stderr
        assert proc.stderr == (f"occlum run: {pyc}: Python's importer would run it for the "
                               f"measured {module}, but it holds other code (planted?); "
                               "delete it\n")
        assert not marker.exists()
    finally:
        pyc.unlink()
    assert occlum(inst, env, "run", "/bin/hello_world").stdout == "Hello World\n"


def test_bytecode_that_python_wrote_for_the_measured_sources_is_fine(world, tmp_path):
    inst, env, pkg = world
    wrote = dict(env)
    wrote.pop("PYTHONDONTWRITEBYTECODE", None)
    probe = "import occlum_tasks.libos.enclave, occlum_tasks.image.writable, unicorn"
    assert python(tmp_path, wrote, probe).returncode == 0
    pycs = list(pkg.rglob("__pycache__/*.pyc"))
    assert len(pycs) > 20
    try:
        for _ in range(2):      # compared in full, then known by identity
            proc = occlum(inst, env, "run", "/bin/hello_world")
            assert (proc.returncode, proc.stdout) == (0, "Hello World\n"), proc.stderr
    finally:
        for pyc in pycs:
            pyc.unlink()


@pytest.mark.parametrize("module", ["occlum_tasks/image/reader.py",
                                    "occlum_tasks/libos/process/clone.py"])
def test_an_edited_runtime_file_is_refused_before_the_guest_runs(world, module):
    # clone.py is one of the modules the LibOS imports at first use (syscall/lazy.py)
    inst, env, pkg = world
    source = pkg / module
    original = source.read_bytes()
    source.write_bytes(original + b"\n# edited after the build\n")
    try:
        refused_in_one_line(occlum(inst, env, "run", "/bin/hello_world"), f"{module} has changed")
    finally:
        source.write_bytes(original)


def test_unicorns_library_file_is_measured_and_loaded_from_the_checked_copy(world):
    inst, env, pkg = world
    library = pkg / "unicorn/lib/libunicorn.so.2"
    # a run records the library's hash with its identity (not for a file changed < 1 s ago)
    time.sleep(max(0.0, library.stat().st_ctime + 1.1 - time.time()))
    assert occlum(inst, env, "run", "/bin/hello_world").returncode == 0
    original, st = library.read_bytes(), library.stat()
    at = len(original) // 2
    library.write_bytes(original[:at] + bytes([original[at] ^ 1]) + original[at + 1:])
    os.utime(library, ns=(st.st_atime_ns, st.st_mtime_ns))     # same size, same mtime
    try:
        refused_in_one_line(occlum(inst, env, "run", "/bin/hello_world"),
                            "unicorn/lib/libunicorn.so.2 has changed")
    finally:
        library.write_bytes(original)


PROBE = """
import os, sys
from pathlib import Path
from occlum_tasks import cli
from occlum_tasks.runtime_loader import MeasuredFinder, owned
lazy = Path({lazy!r})
status = cli.main(["run", "/bin/proc_spawn"])
# a lazily imported module edited after the start-up check: the checked bytes still run
original = lazy.read_bytes()
lazy.write_bytes(original + b"EDITED = 1\\n")
try:
    from occlum_tasks.libos.process import wait
    edited = hasattr(wait, "EDITED")
finally:
    lazy.write_bytes(original)
# a module that appeared after the check is not found, whatever lies on disk
extra = lazy.with_name("zz_extra.py")
extra.write_text("X = 1\\n")
try:
    import occlum_tasks.libos.process.zz_extra
    found = True
except ModuleNotFoundError:
    found = False
finally:
    extra.unlink()
mods = sorted(n for n in sys.modules if owned(n))
foreign = [n for n in mods if not isinstance(sys.modules[n].__loader__, MeasuredFinder)]
maps = Path("/proc/self/maps").read_text()
print("status", status)
print("lazy", "occlum_tasks.libos.process.clone" in mods)
print("edited", edited, "found", found, "foreign", foreign)
print("memfd", "/memfd:libunicorn" in maps, "file", str(Path(sys.modules["unicorn"].__file__).parent) in maps)
"""


def test_every_runtime_module_comes_from_the_checked_bytes(world):
    inst, env, pkg = world
    probe = PROBE.format(lazy=str(pkg / "occlum_tasks/libos/process/wait.py"))
    proc = python(inst, env, probe)
    lines = proc.stdout.splitlines()
    assert lines[-4:] == ["status 0", "lazy True", "edited False found False foreign []",
                          "memfd True file False"], proc.stdout[-2000:] + proc.stderr


def test_a_forged_code_cache_entry_is_recompiled(world, tmp_path):
    from occlum_tasks.runtime_code_cache import FOLDER_NAME, MAC_SIZE, MAGIC
    inst, env, pkg = world
    assert occlum(inst, env, "run", "/bin/hello_world").returncode == 0   # fills the cache
    folder = Path(env["OCCLUM_PLATFORM_SECRET_FILE"]).parent / FOLDER_NAME
    entries = sorted(folder.iterdir())
    assert len(entries) > 50
    marker = tmp_path / "marker"
    evil = marshal.dumps(compile(f"open({str(marker)!r}, 'w').write('x')", "evil", "exec"))
    saved = {e: e.read_bytes() for e in entries}
    try:
        for entry in entries:       # every entry swapped for code without the right MAC
            entry.write_bytes(MAGIC + bytes(MAC_SIZE) + evil)
        proc = occlum(inst, env, "run", "/bin/hello_world")
        assert (proc.returncode, proc.stdout) == (0, "Hello World\n"), proc.stderr
        assert not marker.exists()
        # and what the run used was compiled again and stored with its MAC
        assert sum(e.read_bytes() != MAGIC + bytes(MAC_SIZE) + evil for e in entries) > 50
    finally:
        for entry, data in saved.items():
            entry.write_bytes(data)
