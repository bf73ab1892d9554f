"""Process life: the table, spawning a program, exit and death by a signal.

Exit statuses are kept as wait(2) statuses: (code & 0xff) << 8 for an exit, the
signal number for a death by a signal. A process that ends closes its descriptors at
once (pipe readers see EOF), frees its memory once off the CPU, stays in the table as
a zombie until its parent's wait4, and hands its children to the init process (pid 1,
the first one: the run ends with it).
"""
import os

from unicorn import x86_const as x86

from .. import log, sched, vm
from ..errno import SysError
from ..vm import user_mem
from .loader import ExecError, load_program
from .stack import StackTooSmall, build_initial_stack
from .task import RLIM_INFINITY, RLIMIT_AS, RLIMIT_DATA, RLIMIT_STACK, ProcessTable

SIGNAL_NAMES = {2: "SIGINT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL",
                11: "SIGSEGV", 15: "SIGTERM", 31: "SIGSYS"}

INIT_PID = 1
_table = None
_limits = None
_stderr_fd = 2


def boot(limits, stderr_fd: int = 2) -> None:
    global _table, _limits, _stderr_fd
    _table, _limits, _stderr_fd = ProcessTable(limits.max_num_of_threads), limits, stderr_fd


def shutdown() -> None:
    global _table, _limits
    _table = _limits = None


def table() -> ProcessTable:
    return _table


def limits():
    return _limits


# registers a new program starts with (Linux zeroes the general registers; glibc's
# _start reads RDX as the loader's fini function, so it must be 0)
_ZEROED = (x86.UC_X86_REG_RAX, x86.UC_X86_REG_RBX, x86.UC_X86_REG_RCX, x86.UC_X86_REG_RDX,
           x86.UC_X86_REG_RSI, x86.UC_X86_REG_RDI, x86.UC_X86_REG_RBP, x86.UC_X86_REG_R8,
           x86.UC_X86_REG_R9, x86.UC_X86_REG_R10, x86.UC_X86_REG_R11, x86.UC_X86_REG_R12,
           x86.UC_X86_REG_R13, x86.UC_X86_REG_R14, x86.UC_X86_REG_R15)


def entry_regs(pc: int, sp: int) -> dict:
    """The registers of a new program (boot, execve), the FPU in Linux's initial state
    (sched.FPU_INIT) included."""
    regs = dict.fromkeys(_ZEROED, 0)
    regs.update({x86.UC_X86_REG_RIP: pc, x86.UC_X86_REG_RSP: sp, x86.UC_X86_REG_FS_BASE: 0,
                 x86.UC_X86_REG_RFLAGS: 0x202, sched.FPU_INIT: None})
    return regs


def memory_sizes(rlimits=None):
    """(heap, stack) of a new program image. As in Occlum, a process's RLIMIT_DATA and
    RLIMIT_STACK soft limits (set with setrlimit/prlimit, inherited by its children)
    override Occlum.json's default_heap_size and default_stack_size for the programs it
    then executes or spawns (and RLIMIT_AS bounds their mappings, see `load`)."""
    heap, stack = _limits.default_heap_size, _limits.default_stack_size
    if rlimits is not None:
        if rlimits[RLIMIT_DATA][0] != RLIM_INFINITY:
            heap = rlimits[RLIMIT_DATA][0]
        if rlimits[RLIMIT_STACK][0] != RLIM_INFINITY:
            stack = rlimits[RLIMIT_STACK][0]
    return heap, stack


def load(process_vm, open_file, path, argv, envp, rlimits=None):
    """Load `path` into `process_vm` with its initial stack; returns (entry, sp).
    ExecError when it cannot (process_vm is then left for the caller to release)."""
    heap_size, stack_size = memory_sizes(rlimits)
    if rlimits is not None and rlimits[RLIMIT_AS][0] != RLIM_INFINITY:
        process_vm.as_limit = rlimits[RLIMIT_AS][0]
    program, stack_top = load_program(process_vm, open_file, path, heap_size, stack_size)
    try:
        sp = build_initial_stack(process_vm, stack_top, stack_size, program,
                                 argv, envp, path)
    except StackTooSmall:
        raise ExecError("%s: argument list too long" % path) from None
    return program.entry, sp


def spawn(open_file, path, argv, envp, files, ppid=0, fs=None):
    """Create a process running `path` (Occlum's do_spawn); ExecError when it cannot.
    open_file(path) -> bytes reads the program and its interpreter (the fs subsystem's
    program_opener); files and fs are the new process's descriptor table and FsView."""
    process_vm = vm.new_process_vm()
    try:
        entry, sp = load(process_vm, open_file, path, argv, envp)
    except ExecError:
        process_vm.release()
        raise
    try:
        process = _table.new_process(ppid, path, argv, process_vm, files, _limits, fs)
    except SysError:
        process_vm.release()
        raise ExecError("%s: too many threads (max_num_of_threads=%d)" % (path, _limits.max_num_of_threads)) from None
    main = process.threads[0]
    sched.start_thread(main, entry_regs(entry, sp))
    log.set_context(main.tid, 0, "-")
    log.info("spawned pid %d: %s (entry %#x, stack %#x)", process.pid, path, entry, sp)
    return process


def exit_thread(thread, code: int) -> None:
    """One thread ends (exit(2)); the last one ends its process with `code`."""
    from . import futex
    if thread.clear_child_tid:
        # pthread_join waits for this word to become 0 (CLONE_CHILD_CLEARTID)
        try:
            user_mem.write_struct("<I", thread.clear_child_tid, 0)
            futex.wake(thread.clear_child_tid, 1)
        except SysError:
            pass
    futex.exit_robust_list(thread)
    process = thread.process
    end_thread(thread)
    if not process.threads:
        _terminate(process, (code & 0xFF) << 8)


def end_thread(thread) -> None:
    thread.exited = True
    _table.remove_thread(thread)
    sched.thread_exited(thread)


def exit_group(process, code: int) -> None:
    """The whole process ends with exit code `code`."""
    _terminate(process, (code & 0xFF) << 8)


def kill(process, signal: int, reason: str, stderr_fd: int = None) -> None:
    """Death by a signal (a fault or a frame with no handler to take it): one line to
    stderr, as a shell would say."""
    name = SIGNAL_NAMES.get(signal, "signal %d" % signal)
    try:
        os.write(_stderr_fd if stderr_fd is None else stderr_fd,
                 ("occlum-py: %s (pid %d) killed by %s: %s\n"
                  % (process.path, process.pid, name, reason)).encode(errors="replace"))
    except OSError:
        pass
    _terminate(process, signal & 0x7F)


def terminate_by_signal(process, signal: int) -> None:
    """The default action of a terminating signal, without a message (SIGPIPE...)."""
    _terminate(process, signal & 0x7F)


def _terminate(process, wait_status: int) -> None:
    if process.exited:
        return
    process.exit_status = wait_status
    for thread in list(process.threads):
        end_thread(thread)
    if process.files is not None:
        files, process.files = process.files, None
        files.close_all()            # pipe ends close now: readers see EOF
    if process.vm_owned:
        # its code may be running now: free its memory once off the CPU
        process.vm_owned = False
        sched.defer(process.vm.release)
    vfork_done(process)
    for child in _table.children_of(process):
        child.ppid = INIT_PID           # orphans go to the init process
    init = _table.processes.get(INIT_PID)
    if init is not None and any(c.exited for c in _table.children_of(init)):
        init.child_wait.wake_all()
    parent = _table.processes.get(process.ppid)
    if parent is not None and not parent.exited:
        from .. import signal
        signal.send(parent, signal.SIGCHLD, 1, process.pid)   # CLD_EXITED; ignored by default
        parent.child_wait.wake_all()


def vfork_done(process) -> None:
    """A vfork child exec'd or ended: its parent resumes (clone returns the pid)."""
    if process.vfork_wait is not None:
        process.vfork_wait.wake_all(process.pid)
        process.vfork_wait = None


def reap(process) -> None:
    """wait4 collected this zombie: it is gone."""
    _table.processes.pop(process.pid, None)


def release_all() -> None:
    """The run is over: free what every process still holds."""
    for process in list(_table.processes.values()):
        if process.files is not None:
            files, process.files = process.files, None
            files.close_all()
        if process.vm_owned:
            process.vm.release()
            process.vm_owned = False


def exit_code(wait_status: int) -> int:
    """`occlum run`'s status: the exit code, or 128 + the signal that killed it."""
    if wait_status & 0x7F:
        return 128 + (wait_status & 0x7F)
    return (wait_status >> 8) & 0xFF
