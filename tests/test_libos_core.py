"""The emulated enclave's LibOS core: real musl programs (static-pie and dynamic PIE)
run to completion on Unicorn under the Python LibOS (DESIGN.md section 7).

The C programs in tests/programs/libos_*.c check their own results and exit non-zero
on a wrong one; these tests assert exit statuses and outputs.
"""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from occlum_tasks.libos import log
from occlum_tasks.libos.enclave import host_folder_opener, run_program

MUSL_LOADER = Path("/lib/ld-musl-x86_64.so.1")
LIMITS = dict(user_space_size=256 << 20, default_stack_size=4 << 20, default_heap_size=32 << 20)
BOTH = pytest.mark.parametrize("static", [True, False], ids=["static-pie", "dynamic"])


def make_root(tmp_path: Path, binary: Path, name: str) -> Path:
    """A host folder standing for the image: /bin/<name> and the musl loader."""
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True, exist_ok=True)
    (root / "lib").mkdir(exist_ok=True)
    shutil.copy(binary, root / "bin" / name)
    if not (root / "lib" / MUSL_LOADER.name).exists():
        shutil.copy(MUSL_LOADER, root / "lib" / MUSL_LOADER.name)
    return root


def run(tmp_path, binary, args=(), env=(), name="prog", log_level="off", **limits):
    """Run /bin/<name> in a fresh enclave; returns (status, stdout, stderr)."""
    root = make_root(tmp_path, binary, name)
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open("/dev/null", "rb") as stdin, open(out, "wb") as o, open(err, "wb") as e:
        status = run_program(host_folder_opener(root), "/bin/" + name, ["/bin/" + name, *args], list(env),
                             stdio=(stdin.fileno(), o.fileno(), e.fileno()), log_level=log_level,
                             **{**LIMITS, **limits})
    return status, out.read_text(errors="replace"), err.read_text(errors="replace")


@BOTH
def test_hello_world(compile_program, tmp_path, static):
    binary = compile_program("libos_hello.c", static=static)
    status, out, err = run(tmp_path, binary)
    assert (status, out, err) == (0, "Hello World from the emulated enclave (argc=1)\n", "")


@BOTH
def test_exit_status(compile_program, tmp_path, static):
    status, out, _ = run(tmp_path, compile_program("libos_exit.c", static=static), ["42"])
    assert status == 42
    assert out == "atexit ran\n"


def test_exit_status_is_low_byte(compile_program, tmp_path):
    status, _, _ = run(tmp_path, compile_program("libos_exit.c", static=True), ["300"])
    assert status == 300 & 0xFF


@BOTH
def test_argv_envp_auxv(compile_program, tmp_path, static):
    status, out, _ = run(tmp_path, compile_program("libos_args.c", static=static), ["one", "two words"],
                         ["OCCLUM_TEST=yes", "HOME=/root"], name="args")
    assert status == 0, out
    assert "argv[0]=/bin/args\nargv[1]=one\nargv[2]=two words\n" in out
    assert "env OCCLUM_TEST=yes\nenv HOME=/root\n" in out
    assert "execfn=/bin/args\n" in out


def test_envp_missing_variable_is_seen(compile_program, tmp_path):
    status, _, _ = run(tmp_path, compile_program("libos_args.c", static=True), env=["HOME=/root"])
    assert status == 11     # the program itself noticed OCCLUM_TEST is absent


@BOTH
def test_null_dereference_is_sigsegv(compile_program, tmp_path, static):
    status, out, err = run(tmp_path, compile_program("libos_segv.c", static=static), name="segv")
    assert status == 128 + 11
    assert out == "before the fault\n"
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "SIGSEGV" in lines[0] and "/bin/segv" in lines[0] and "0x0" in lines[0]
    assert "Traceback" not in err


def test_non_pie_is_refused(tmp_path):
    musl_gcc = shutil.which("musl-gcc")
    if musl_gcc is None:
        pytest.skip("musl-gcc (musl-tools) is needed to build a non-PIE program")
    binary = tmp_path / "nopie"
    subprocess.run([musl_gcc, "-static", "-no-pie", "-o", binary, Path(__file__).parent / "programs" / "libos_hello.c"],
                   check=True)
    status, out, err = run(tmp_path, binary, name="nopie")
    assert status == 127
    assert out == ""
    assert len(err.splitlines()) == 1 and "position-independent" in err and "/bin/nopie" in err


def test_missing_program_and_garbage_are_127(tmp_path):
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"#!/bin/sh\necho hi\n")
    status, _, err = run(tmp_path, garbage, name="garbage")
    assert status == 127 and "not an ELF" in err
    root = make_root(tmp_path, garbage, "garbage")
    with open(tmp_path / "err2", "wb") as e:
        status = run_program(host_folder_opener(root), "/bin/nothere", ["nothere"], [],
                             stdio=(0, 1, e.fileno()), **LIMITS)
    assert status == 127
    assert "no such file" in (tmp_path / "err2").read_text()


@BOTH
def test_memory_calls(compile_program, tmp_path, static):
    """brk, mmap/munmap/mprotect/mremap/madvise and large mallocs, checked in C."""
    status, out, _ = run(tmp_path, compile_program("libos_memory.c", static=static))
    assert status == 0, out
    assert out.endswith("memory ok\n")


@BOTH
def test_enomem_past_user_space(compile_program, tmp_path, static):
    status, out, _ = run(tmp_path, compile_program("libos_enomem.c", static=static), user_space_size=96 << 20)
    assert status == 0, out
    mapped = int(re.search(r"mapped (\d+) MiB", out).group(1))
    # the budget is the user space: what the program could get is below 96 MiB
    assert 40 <= mapped < 96
    assert out.endswith("enomem ok\n")


@BOTH
def test_misc_calls(compile_program, tmp_path, static):
    """ids, uname, clocks, getrandom, EFAULT, EBADF, ENOSYS and the CPUID the guest sees."""
    status, out, _ = run(tmp_path, compile_program("libos_misc.c", static=static))
    assert status == 0, out
    assert out == "misc ok\n"


def test_trace_log_lines(compile_program, tmp_path):
    status, out, err = run(tmp_path, compile_program("libos_hello.c", static=True), log_level="trace")
    assert status == 0 and out.startswith("Hello World")
    lines = err.splitlines()
    line_re = re.compile(r"^\[(ERROR|WARN|INFO|DEBUG|TRACE)\]\[T\d+\]\[#\d+\]\[[\w-]+\] .+$")
    assert lines and all(line_re.match(line) for line in lines), err
    writes = [line for line in lines if "][writev] writev(1, " in line]
    assert len(writes) == 1 and writes[0].startswith("[TRACE][T1][#") and writes[0].endswith(" = 47")
    assert any(re.match(r"\[TRACE\]\[T1\]\[#\d+\]\[exit_group\] exit_group\(0\) = \?$", line) for line in lines)
    assert any("arch_prctl(" in line for line in lines)
    rounds = [int(re.search(r"\]\[#(\d+)\]", line).group(1)) for line in lines if line.startswith("[TRACE]")]
    assert rounds == sorted(rounds) and rounds[0] == 1


def test_log_off_writes_nothing(compile_program, tmp_path):
    status, _, err = run(tmp_path, compile_program("libos_misc.c", static=True), ["enosys"], log_level="off")
    assert status == 0 and err == ""


def test_unknown_call_is_enosys_and_warned_once(compile_program, tmp_path):
    status, out, err = run(tmp_path, compile_program("libos_misc.c", static=True), ["enosys"], log_level="WARNING")
    assert status == 0
    assert out == "fork=-1,-1 errno=38\n"
    warnings = [line for line in err.splitlines() if line.startswith("[WARN]")]
    assert len(warnings) == 1 and "fork" in warnings[0] and "ENOSYS" in warnings[0]


def test_handler_exception_becomes_eio(compile_program, tmp_path, monkeypatch):
    from occlum_tasks.libos.process import syscalls as process_syscalls

    def broken():
        raise RuntimeError("simulated LibOS bug")

    monkeypatch.setitem(process_syscalls.SYSCALLS, "getppid", broken)
    status, out, err = run(tmp_path, compile_program("libos_misc.c", static=True), ["getppid"], log_level="error")
    assert status == 0
    assert out == "getppid=-1 errno=5\n"
    assert "[ERROR]" in err and "getppid" in err and "simulated LibOS bug" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("value, level", [
    ("off", log.OFF), ("ERROR", log.ERROR), ("panic", log.ERROR), ("Fatal", log.ERROR),
    ("warn", log.WARN), ("WARNING", log.WARN), ("info", log.INFO), ("debug", log.DEBUG),
    ("TRACE", log.TRACE), ("verbose", log.OFF), ("", log.OFF), (None, log.OFF),
])
def test_log_level_names(value, level):
    assert log.parse_level(value) == level
