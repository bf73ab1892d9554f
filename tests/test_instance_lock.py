"""One enclave at a time on an instance's writable layer (issue 7, section 3): a second
`occlum run` is refused at once, naming the pid that holds run/.lock; `occlum status`
says the instance is running; a run killed with SIGKILL leaves no lock behind and no
fsync'd record lost. tests/programs/layer_log.c appends fsync'd records and says so."""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from occlum_tasks import instance_lock


def occlum_cmd(*args):
    return [sys.executable, "-m", "occlum_tasks.cli", *map(str, args)]


def occlum(cwd, *args):
    return subprocess.run(occlum_cmd(*args), cwd=cwd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def instance(tmp_path_factory, compile_program):
    top = tmp_path_factory.mktemp("lock")
    assert occlum(top, "new", "inst").returncode == 0
    inst = top / "inst"
    shutil.copy(compile_program("layer_log.c"), inst / "image" / "bin" / "layer_log")
    proc = occlum(inst, "build")
    assert proc.returncode == 0, proc.stderr
    return inst


def start_writer(inst, path, count, delay_ms):
    """A run that appends `count` records to `path`; returns (process, first line)."""
    proc = subprocess.Popen(occlum_cmd("run", "/bin/layer_log", "write", path, count, delay_ms),
                            cwd=inst, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    assert first == "fsynced 0\n", first + proc.stderr.read()
    return proc, first


def records(inst, path):
    proc = occlum(inst, "run", "/bin/layer_log", "check", path)
    assert proc.returncode == 0 and proc.stdout.endswith(" records ok\n"), proc.stdout + proc.stderr
    return int(proc.stdout.split()[0])


@pytest.mark.slow
def test_a_second_run_is_refused_at_once_and_the_layer_is_intact(instance):
    writer, _ = start_writer(instance, "/root/log", 40, 50)
    try:
        status = occlum(instance, "status")
        assert status.stdout == f"running (pid {writer.pid})\n", status.stdout + status.stderr
        start = time.monotonic()
        second = occlum(instance, "run", "/bin/layer_log", "write", "/root/log", 5, 0)
        elapsed = time.monotonic() - start
        assert writer.poll() is None, "the first run ended before the second was refused"
    finally:
        out, err = writer.communicate(timeout=120)
    assert second.returncode == 1 and second.stdout == "", second.stdout
    lines = second.stderr.splitlines()
    assert len(lines) == 1 and f"already running in an enclave (pid {writer.pid})" in lines[0], lines
    assert "one program or a shell inside the enclave" in lines[0]
    assert elapsed < 5, elapsed          # at once: not after waiting for the first run
    assert writer.returncode == 0 and out.endswith("fsynced 39\ndone\n"), out + err
    assert records(instance, "/root/log") == 40       # the refused run wrote nothing
    assert not occlum(instance, "status").stdout.startswith("running")
    assert instance_lock.running(instance) is None


@pytest.mark.slow
def test_a_killed_run_leaves_no_lock_and_loses_no_fsynced_record(instance):
    writer, _ = start_writer(instance, "/root/killed", 100000, 5)
    seen = 0
    while seen < 20:
        line = writer.stdout.readline()
        assert line.startswith("fsynced "), line
        seen = int(line.split()[1]) + 1
    writer.send_signal(signal.SIGKILL)
    rest = writer.communicate()[0]
    seen += sum(1 for line in rest.splitlines() if line.startswith("fsynced "))
    assert writer.returncode == -signal.SIGKILL
    assert (instance / "run" / ".lock").is_file()     # the file stays; the lock went with the process
    assert instance_lock.running(instance) is None
    assert not occlum(instance, "status").stdout.startswith("running")
    assert records(instance, "/root/killed") >= seen   # every fsync'd record is there
    proc = occlum(instance, "run", "/bin/layer_log", "write", "/root/after", 3, 0)
    assert proc.returncode == 0 and proc.stdout.endswith("done\n"), proc.stdout + proc.stderr
    assert records(instance, "/root/after") == 3


def test_the_lock_is_shared_within_a_process_and_refused_across(tmp_path):
    """In-process: nested holds (run_in_enclave, then boot) share the lock; a holder in
    another process is named; the run/ folder is reached without following a link."""
    inst = tmp_path / "inst"
    inst.mkdir()
    with instance_lock.hold(inst):
        with instance_lock.hold(inst):
            assert instance_lock.running(inst) == os.getpid()
        assert instance_lock.running(inst) == os.getpid()
        code = ("import sys; from occlum_tasks import instance_lock as L\n"
                "try:\n    L.hold(sys.argv[1]).__enter__()\n"
                "except L.InstanceBusy as e:\n    print(e)\n")
        other = subprocess.run([sys.executable, "-c", code, str(inst)], capture_output=True, text=True)
        assert f"already running in an enclave (pid {os.getpid()})" in other.stdout, other.stdout + other.stderr
    assert instance_lock.running(inst) is None
    assert (inst / "run" / ".lock").read_bytes() == b""
    shutil.rmtree(inst / "run")
    os.symlink(tmp_path, inst / "run")
    with pytest.raises(instance_lock.fsutil.LinkRefused):
        with instance_lock.hold(inst):
            pass
    assert not (tmp_path / ".lock").exists()
