"""Process life: the table, spawning a program, exit and death by a signal.

Exit statuses are kept as wait(2) statuses: (code & 0xff) << 8 for an exit, the
signal number for a death by a signal.
"""
import os

from .. import log, sched, vm
from ..errno import SysError
from .loader import ExecError, load_program
from .stack import StackTooSmall, build_initial_stack
from .task import ProcessTable

SIGNAL_NAMES = {2: "SIGINT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL",
                11: "SIGSEGV", 15: "SIGTERM", 31: "SIGSYS"}

_table = None
_limits = None


def boot(limits) -> None:
    global _table, _limits
    _table, _limits = ProcessTable(limits.max_num_of_threads), limits


def shutdown() -> None:
    global _table, _limits
    _table = _limits = None


def table() -> ProcessTable:
    return _table


def limits():
    return _limits


def spawn(open_file, path, argv, envp, files, ppid=0, fs=None):
    """Create a process running `path` (Occlum's do_spawn); ExecError when it cannot.
    open_file(path) -> bytes reads the program and its interpreter (the fs subsystem's
    program_opener); files and fs are the new process's descriptor table and FsView."""
    process_vm = vm.new_process_vm()
    try:
        program, stack_top = load_program(process_vm, open_file, path,
                                          _limits.default_heap_size, _limits.default_stack_size)
        sp = build_initial_stack(process_vm, stack_top, _limits.default_stack_size, program,
                                 argv, envp, path)
    except StackTooSmall:
        process_vm.release()
        raise ExecError("%s: argument list too long" % path) from None
    except ExecError:
        process_vm.release()
        raise
    try:
        process = _table.new_process(ppid, path, argv, process_vm, files, _limits, fs)
    except SysError:
        process_vm.release()
        raise ExecError("%s: too many threads (max_num_of_threads=%d)" % (path, _limits.max_num_of_threads)) from None
    main = process.threads[0]
    main.pc, main.sp = program.entry, sp
    log.set_context(main.tid, 0, "-")
    log.info("spawned pid %d: %s (entry %#x, stack %#x)", process.pid, path, main.pc, sp)
    return process


def exit_group(process, code: int) -> None:
    """The whole process ends with exit code `code`."""
    _terminate(process, (code & 0xFF) << 8)


def kill(process, signal: int, reason: str, stderr_fd: int = 2) -> None:
    """Death by a signal (no handlers yet): one line to stderr, as a shell would say."""
    name = SIGNAL_NAMES.get(signal, "signal %d" % signal)
    try:
        os.write(stderr_fd, ("occlum-py: %s (pid %d) killed by %s: %s\n"
                             % (process.path, process.pid, name, reason)).encode(errors="replace"))
    except OSError:
        pass
    _terminate(process, signal & 0x7F)


def _terminate(process, wait_status: int) -> None:
    if process.exited:
        return
    process.exit_status = wait_status
    for thread in process.threads:
        thread.exited = True
        _table.remove_thread(thread)
    if sched.cpu() is not None:
        sched.stop_current()


def release(process) -> None:
    """Free what a dead process held; only once it is off the CPU (its code and stack
    must stay mapped until `emu_start` has returned)."""
    if process.files is not None:
        process.files.close_all()
    process.vm.release()


def exit_code(wait_status: int) -> int:
    """`occlum run`'s status: the exit code, or 128 + the signal that killed it."""
    if wait_status & 0x7F:
        return 128 + (wait_status & 0x7F)
    return (wait_status >> 8) & 0xFF
