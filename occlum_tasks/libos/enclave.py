"""Booting the emulated enclave and running one program in it: `run_program`.

The launch and trust chain (measurement, signature, image MACs) and the file system
over the SEFS image are another part's: this entry point receives `open_file`, a
function giving a file's bytes from the already verified image.
"""
import os
import traceback

from . import log, sched, vm
from .cpu import Cpu
from .fs import FileTable
from .process import current, lifecycle
from .process.loader import ExecError
from .process.task import Limits
from .syscall import dispatch, table

EXIT_CANNOT_START = 127


def run_program(open_file, path, argv, envp, *, user_space_size, default_stack_size,
                default_heap_size, max_num_of_threads=32, stdio=(0, 1, 2), log_level=None) -> int:
    """Run `path` from the image until it ends; returns `occlum run`'s exit status.

    open_file(path) -> bytes, raising FileNotFoundError (or another OSError) when the
    image has no such file. argv is passed as given (argv[0] included); envp is a list
    of "KEY=VALUE" strings. stdio are the host descriptors the program's 0, 1 and 2 are
    bound to. log_level overrides OCCLUM_LOG_LEVEL. Returns the program's exit code,
    128 + the signal that killed it, or 127 when it could not be started (a one-line
    reason then goes to the stderr descriptor).
    """
    log.configure(log_level, fd=stdio[2])
    cpu = Cpu()
    process = None
    try:
        vm.boot(cpu, user_space_size)
        sched.boot(cpu)
        lifecycle.boot(Limits(user_space_size, default_stack_size, default_heap_size, max_num_of_threads))
        dispatch.Dispatcher(table.build()).install(cpu)
        try:
            process = lifecycle.spawn(open_file, path, list(argv), list(envp), FileTable(stdio))
        except ExecError as exc:
            _say(stdio[2], "occlum-py: %s" % exc)
            return EXIT_CANNOT_START
        except Exception as exc:  # noqa: BLE001 - a LibOS bug: one line, traceback at debug
            _say(stdio[2], "occlum-py: %s: internal error while starting: %r" % (path, exc))
            if log.level >= log.DEBUG:
                _say(stdio[2], traceback.format_exc().rstrip())
            return EXIT_CANNOT_START
        thread = process.threads[0]
        stop = sched.run(thread)
        if not process.exited:
            log.set_context(thread.tid, thread.sys_round, "-")
            lifecycle.kill(process, stop.signal, stop.message, stdio[2])
        status = lifecycle.exit_code(process.exit_status)
        log.info("pid %d exited with status %d", process.pid, status)
        return status
    finally:
        if process is not None:
            lifecycle.release(process)
        lifecycle.shutdown()
        sched.shutdown()
        vm.shutdown()
        current.set(None)


def _say(fd: int, line: str) -> None:
    try:
        os.write(fd, (line + "\n").encode(errors="replace"))
    except OSError:
        pass


def host_folder_opener(root):
    """An `open_file` reading a host folder as the image root (tests, debugging)."""
    root = os.path.realpath(root)

    def open_file(path: str) -> bytes:
        full = os.path.realpath(os.path.join(root, path.lstrip("/")))
        if full != root and not full.startswith(root + os.sep):
            raise FileNotFoundError(path)
        with open(full, "rb") as f:
            return f.read()

    return open_file
