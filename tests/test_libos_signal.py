"""Signal delivery to handlers (signal/delivery.py, signal/frame.py): frames and
rt_sigreturn, CPU faults, sigsuspend/sigtimedwait/sigaltstack, SIGCHLD, EINTR and
SA_RESTART. The C programs tests/programs/sig_*.c check their own results and exit
with the number of the failed check."""
import signal
import subprocess
import sys
import time

import pytest

from test_libos_proc import BOTH, LIMITS, make_root, run, run_isolated


@BOTH
def test_handlers_masks_altstack_fp_sigsuspend_sigtimedwait_sigchld(compile_program, tmp_path, static):
    status, out, err = run_isolated(tmp_path, compile_program("sig_basic.c", static=static), "sig_basic")
    assert status == 0, err
    assert "sig_basic ok" in out


@BOTH
def test_fault_handlers_siglongjmp_and_mprotect(compile_program, tmp_path, static):
    status, out, err = run(tmp_path, compile_program("sig_fault.c", static=static), "sig_fault")
    assert status == 0, err
    assert "sig_fault ok" in out


def test_blocked_fault_signal_takes_default_action(compile_program, tmp_path):
    status, out, err = run(tmp_path, compile_program("sig_fault.c"), "sig_fault", ["blocked"])
    assert status == 128 + 11, (out, err)
    assert "killed by SIGSEGV" in err


def test_frame_on_an_unmapped_stack_kills_with_sigsegv(compile_program, tmp_path):
    status, out, err = run(tmp_path, compile_program("sig_fault.c"), "sig_fault", ["badstack"])
    assert status == 128 + 11, (out, err)
    assert "killed by SIGSEGV" in err


@BOTH
def test_blocked_read_eintr_and_restart(compile_program, tmp_path, static):
    status, out, err = run_isolated(tmp_path, compile_program("sig_eintr.c", static=static), "sig_eintr")
    assert status == 0, err
    assert "sig_eintr ok" in out



@pytest.mark.parametrize("mode, host_signal, expected", [
    ("handler", signal.SIGTERM, 7), ("default", signal.SIGTERM, 143), ("default", signal.SIGINT, 130),
    ("compute", signal.SIGTERM, 143)])
def test_host_signal_forwarded_to_first_process(compile_program, tmp_path, mode, host_signal, expected):
    """`occlum run`'s SIGINT/SIGTERM reach the enclave's first process (signal/host.py)."""
    root = make_root(tmp_path, {"sig_host": compile_program("sig_host.c")})
    code = ("import sys; from occlum_tasks.libos.enclave import run_program, host_folder_root\n"
            "sys.exit(run_program(host_folder_root(sys.argv[1]), '/bin/sig_host', ['/bin/sig_host', sys.argv[2]],"
            " [], log_level='off', **%r))" % (LIMITS,))
    proc = subprocess.Popen([sys.executable, "-c", code, str(root), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        time.sleep(0.1)
        proc.send_signal(host_signal)
        proc.wait(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == expected, proc.stderr.read()
