"""Booting the emulated enclave and running one program in it: `run_program`.

The launch and trust chain (measurement, signature, image MACs) are launch.py's: this
entry point receives the mount table (fs.MountSet) built from the verified config
(fs.mount_from_config: the unionfs of the verified image and the writable layer at /,
hostfs, ...), or for tests and debugging a host folder as / (`host_folder_root`).
"""
import os
import traceback

from . import fs, log, sched, vm
from .cpu import SIGINT, Cpu, EngineLayoutError, Stop
from .process import current, lifecycle
from .process.loader import ExecError
from .process.task import Limits
from .signal import delivery, host
from .syscall import dispatch, table

EXIT_CANNOT_START = 127
SIGKILL = 9


def run_program(mounts, path, argv, envp, *, user_space_size, default_stack_size,
                default_heap_size, max_num_of_threads=32, stdio=(0, 1, 2), log_level=None) -> int:
    """Run `path` until it ends; returns `occlum run`'s exit status.

    mounts: the enclave's file systems (fs.MountSet); the program and its interpreter
    are read through them, links followed. The caller keeps the mounts: they are
    synced (the writable layers commit) when the run ends, and closed by the caller.
    argv is passed as given (argv[0] included); envp is a list of "KEY=VALUE" strings.
    stdio are the host descriptors the program's 0, 1 and 2 are bound to. log_level
    overrides OCCLUM_LOG_LEVEL. Returns the program's exit code, 128 + the signal that
    killed it, or 127 when it could not be started (a one-line reason then goes to the
    stderr descriptor).
    """
    log.configure(log_level, fd=stdio[2])
    try:
        cpu = Cpu()
    except EngineLayoutError as exc:
        _say(stdio[2], "occlum-py: %s" % exc)
        return EXIT_CANNOT_START
    process = None
    try:
        vm.boot(cpu, user_space_size)
        sched.boot(cpu)
        fs.boot(mounts, stdio[2])
        for warning in mounts.warnings:
            log.warn("%s", warning)
        lifecycle.boot(Limits(user_space_size, default_stack_size, default_heap_size, max_num_of_threads), stdio[2])
        dispatch.Dispatcher(table.build()).install(cpu)
        try:
            view = fs.new_fs_view()
            process = lifecycle.spawn(fs.program_opener(view), path, list(argv), list(envp),
                                      fs.stdio_table(stdio), fs=view)
        except ExecError as exc:
            _say(stdio[2], "occlum-py: %s" % exc)
            return EXIT_CANNOT_START
        except Exception as exc:  # noqa: BLE001 - a LibOS bug: one line, traceback at debug
            _say(stdio[2], "occlum-py: %s: internal error while starting: %r" % (path, exc))
            if log.level >= log.DEBUG:
                _say(stdio[2], traceback.format_exc().rstrip())
            return EXIT_CANNOT_START
        _run(process, stdio[2])
        status = lifecycle.exit_code(process.exit_status)
        log.info("pid %d exited with status %d", process.pid, status)
        return status
    finally:
        if process is not None:
            lifecycle.release_all()
        sched.shutdown()
        lifecycle.shutdown()
        vm.shutdown()
        current.set(None)
        fs.shutdown()           # last: it commits the writable layers, and may fail


def _run(init, stderr_fd) -> None:
    """Run every thread until the first process (init) ends; the others are killed
    with it, and the run's status is init's."""

    def on_stop(thread, stop):
        log.set_context(thread.tid, thread.sys_round, "-")
        if stop.kind == "interrupted":
            return stop                 # Ctrl-C on the host ends the run
        # a protection fault (the page is mapped) is SEGV_ACCERR, others SEGV_MAPERR
        access_error = "protected" in stop.message or "non-executable" in stop.message
        if stop.kind == "fault" and delivery.deliver_fault(thread, stop.signal, stop.address, access_error):
            return None                 # the handler runs; the thread stays runnable
        lifecycle.kill(thread.process, stop.signal, stop.message, stderr_fd)
        return None

    try:
        with host.forwarding():          # the host's SIGINT/SIGTERM go to init
            final = sched.run(lambda: init.exited, on_stop)
    except sched.Deadlock:
        # every thread waits on something only another thread could do: say who waits
        # on what, and end the run as if killed (SIGKILL) instead of hanging forever
        _say(stderr_fd, "occlum-py: deadlock: no thread can run and none can be woken")
        for thread, what in sched.blocked_report():
            _say(stderr_fd, "occlum-py:   tid %d (pid %d %s) waits on %s"
                 % (thread.tid, thread.process.pid, thread.process.path, what))
        lifecycle.terminate_by_signal(init, SIGKILL)
        return
    except KeyboardInterrupt:
        final = Stop("interrupted", SIGINT, 0, "interrupted")
    if final is not None and not init.exited:
        lifecycle.kill(init, final.signal, final.message, stderr_fd)


def _say(fd: int, line: str) -> None:
    try:
        os.write(fd, (line + "\n").encode(errors="replace"))
    except OSError:
        pass


def host_folder_root(root):
    """The mounts of a run over a host folder: hostfs at / (confined to `root`), procfs
    and devfs (tests, debugging)."""
    return fs.host_root(root)


# the name of the earlier `open_file` form; tests written against it keep working
host_folder_opener = host_folder_root
