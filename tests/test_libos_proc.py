"""Many LibOS processes and threads in one enclave: the scheduler, threads and futexes,
posix_spawn/vfork/execve/wait4, pipes and poll/select, deadlock reports, preemption
(DESIGN.md section 7). The C programs tests/programs/proc_*.c check their own results
and exit with the number of the failed check."""
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from occlum_tasks.libos.enclave import host_folder_root, run_program

MUSL_LOADER = Path("/lib/ld-musl-x86_64.so.1")
LIMITS = dict(user_space_size=256 << 20, default_stack_size=1 << 20, default_heap_size=8 << 20)
BOTH = pytest.mark.parametrize("static", [True, False], ids=["static-pie", "dynamic"])


def make_root(tmp_path: Path, binaries: dict) -> Path:
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True, exist_ok=True)
    (root / "lib").mkdir(exist_ok=True)
    for name, binary in binaries.items():
        shutil.copy(binary, root / "bin" / name)
    shutil.copy(MUSL_LOADER, root / "lib" / MUSL_LOADER.name)
    return root


def run(tmp_path, binary, name, args=(), **limits):
    """Run /bin/<name> in a fresh enclave; returns (status, stdout, stderr)."""
    root = make_root(tmp_path, {name: binary})
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open("/dev/null", "rb") as stdin, open(out, "wb") as o, open(err, "wb") as e:
        status = run_program(host_folder_root(root), "/bin/" + name, ["/bin/" + name, *args], [],
                             stdio=(stdin.fileno(), o.fileno(), e.fileno()), log_level="off",
                             **{**LIMITS, **limits})
    return status, out.read_text(errors="replace"), err.read_text(errors="replace")


def run_isolated(tmp_path, binary, name, args=(), timeout=30, **limits):
    """As `run`, in a child Python with a timeout: for runs that could hang."""
    root = make_root(tmp_path, {name: binary})
    code = ("import sys, json; from occlum_tasks.libos.enclave import run_program, host_folder_root\n"
            "a = json.loads(sys.argv[1])\n"
            "sys.exit(run_program(host_folder_root(a['root']), a['path'], a['argv'], [], log_level='off',"
            " **a['limits']))")
    arg = json.dumps({"root": str(root), "path": "/bin/" + name, "argv": ["/bin/" + name, *args],
                      "limits": {**LIMITS, **limits}})
    proc = subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stdout, proc.stderr


# ---- threads ------------------------------------------------------------------------------
@BOTH
def test_threads_mutex_condvar_join_detached_tls(compile_program, tmp_path, static):
    status, out, err = run(tmp_path, compile_program("proc_threads.c", static=static), "proc_threads", ["all"])
    assert status == 0, err
    assert out == "counter 32000\ncondvar sum 500500\ndetached 8 tls ok\n"


def test_futex_operations_timeouts_and_robust_mutexes(compile_program, tmp_path):
    status, out, err = run(tmp_path, compile_program("proc_futex.c"), "proc_futex")
    assert (status, out) == (0, "futex ok\n"), err


def test_thread_bomb_gets_eagain_and_the_enclave_goes_on(compile_program, tmp_path):
    status, out, err = run(tmp_path, compile_program("proc_threads.c"), "proc_threads", ["bomb"],
                           max_num_of_threads=10)
    assert status == 0, err
    assert out == "bomb made 9 then EAGAIN\n"       # 10 threads in all, the main one included


# ---- processes -----------------------------------------------------------------------------
@BOTH
def test_spawn_pipe_chain_vfork_exec_wait(compile_program, tmp_path, static):
    status, out, err = run(tmp_path, compile_program("proc_spawn.c", static=static), "proc_spawn")
    assert status == 0, out + err
    assert out.splitlines() == ["pipe: hello from pid 2 ppid 1", "chain: 43", "vfork+exec ok",
                                "wait statuses ok", "orphan adopted"]
    # the child that faulted was reported; the run went on
    assert "killed by SIGSEGV" in err


def test_poll_select_nonblocking_and_epipe(compile_program, tmp_path):
    status, out, err = run(tmp_path, compile_program("proc_sched.c"), "proc_sched", ["poll"])
    assert (status, out) == (0, "poll/select ok\n"), err


def test_pipe_atomic_records_and_stream_integrity(compile_program, tmp_path):
    status, out, err = run(tmp_path, compile_program("proc_sched.c"), "proc_sched", ["pipestress"])
    assert (status, out) == (0, "pipe stress ok\n"), err


def test_sigpipe_default_action_ends_the_writer(compile_program, tmp_path):
    status, out, err = run(tmp_path, compile_program("proc_sched.c"), "proc_sched", ["sigpipe"])
    assert status == 128 + 13, out + err


def test_kill_default_actions_and_abort(compile_program, tmp_path):
    status, out, err = run(tmp_path, compile_program("proc_sched.c"), "proc_sched", ["kill"])
    assert (status, out) == (128 + 6, "kill ok\n"), err


def test_preemption_lets_the_first_process_finish(compile_program, tmp_path):
    """A child computes forever; the first process prints on a timer and exits, which
    ends the run (the child is killed with it)."""
    started = time.monotonic()
    status, out, err = run_isolated(tmp_path, compile_program("proc_sched.c"), "proc_sched", ["preempt"])
    assert (status, out) == (0, "".join("tick %d\n" % i for i in range(5))), err
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("mode, waits_on", [("deadlock-join", "futex"), ("deadlock-pipe", "read of pipe")])
def test_deadlock_is_reported_not_a_hang(compile_program, tmp_path, mode, waits_on):
    status, out, err = run_isolated(tmp_path, compile_program("proc_sched.c"), "proc_sched", [mode])
    assert status == 128 + 9
    lines = err.splitlines()
    assert lines[0].startswith("occlum-py: deadlock")
    blocked = lines[1:]
    assert blocked and all("waits on" in line and waits_on in line for line in blocked), err
    assert len(blocked) == (2 if mode == "deadlock-join" else 1)


def test_host_stdin_read_does_not_stop_other_threads(compile_program, tmp_path):
    """The first process blocks reading the host's stdin (a pipe nobody writes yet)
    while a child prints; the run ends when stdin brings a line."""
    binary = compile_program("proc_stdin.c")
    root = make_root(tmp_path, {"proc_stdin": binary})
    code = ("import sys; from occlum_tasks.libos.enclave import run_program, host_folder_root\n"
            "sys.exit(run_program(host_folder_root(sys.argv[1]), '/bin/proc_stdin', ['/bin/proc_stdin'], [],"
            " log_level='off', user_space_size=256 << 20, default_stack_size=1 << 20,"
            " default_heap_size=8 << 20))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(root)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()          # printed by the child while the parent reads
        proc.stdin.write("line from the host\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert first == "child ran while the parent read stdin\n", err
    assert out == "parent read: line from the host\n", err
    assert proc.returncode == 0, err


# ---- end to end through `occlum run` --------------------------------------------------------
def cli(cwd, *args):
    return subprocess.run([sys.executable, "-m", "occlum_tasks.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True)


def test_occlum_run_pipeline_of_three_processes(compile_program, tmp_path):
    assert cli(tmp_path, "new", "inst").returncode == 0
    inst = tmp_path / "inst"
    binary = compile_program("proc_pipeline.c")
    for name in ("pipeline", "gen", "filter", "count"):
        shutil.copy(binary, inst / "image" / "bin" / name)
    proc = cli(inst, "build")
    assert proc.returncode == 0, proc.stderr
    proc = cli(inst, "run", "/bin/pipeline", "20000")
    assert (proc.returncode, proc.stdout) == (0, "count=10000 sum=100010000\n"), proc.stderr


@BOTH
def test_rlimits_size_the_programs_a_process_spawns(compile_program, tmp_path, static):
    # as Occlum's per-process ulimit: the parent's RLIMIT_DATA and RLIMIT_STACK give its
    # children their heap and stack instead of Occlum.json's defaults
    status, out, err = run(tmp_path, compile_program("proc_rlimit.c", static=static), "proc_rlimit",
                           default_heap_size=32 << 20, default_stack_size=4 << 20)
    assert status == 0, out + err
    assert out.splitlines() == ["child ok", "rlimit ok"]
