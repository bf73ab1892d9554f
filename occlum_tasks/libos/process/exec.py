"""execve: the calling process runs another program.

The new image is loaded into a new range of the shared user space first, so that a
failure (no such file, not PIE, no memory) returns an error to the caller with its
old image intact. Then the other threads end, close-on-exec descriptors close,
handled signals go back to their default action, and the old range is freed once the
thread is off the CPU (its code runs until then). A vfork child never owned its
memory: its parent gets it back, and resumes.
"""
import errno as host_errno

from .. import log, sched, vm
from ..errno import E2BIG, EACCES, EFAULT, ENOENT, ENOEXEC, ENOMEM, SysError
from ..vm import user_mem
from . import current, lifecycle
from .loader import ExecError

MAX_ARGS = 0x7FFF          # Linux's MAX_ARG_STRINGS is larger; a bound on the walk
SIG_DFL, SIG_IGN = 0, 1


def _string_array(addr: int):
    """A NULL-terminated array of string pointers from guest memory."""
    out = []
    if not addr:
        return out
    while True:
        (ptr,) = user_mem.read_struct("<Q", addr + 8 * len(out))
        if not ptr:
            return out
        if len(out) >= MAX_ARGS:
            raise SysError(E2BIG)
        out.append(user_mem.read_cstring(ptr, 1 << 17))


def sys_execve(path_ptr, argv_ptr, envp_ptr):
    from .. import fs, signal
    thread = current.thread
    process = thread.process
    path = user_mem.read_cstring(path_ptr).decode("utf-8", "surrogateescape")
    argv, envp = _string_array(argv_ptr), _string_array(envp_ptr)
    if not path:
        raise SysError(ENOENT)
    opener = fs.program_opener(process.fs)
    failure = []

    def open_file(name):
        try:
            return opener(name)
        except OSError as exc:
            failure.append(exc.errno)
            raise

    new_vm = vm.new_process_vm()
    try:
        entry, sp = lifecycle.load(new_vm, open_file, path, argv, envp, process.rlimits)
    except ExecError as exc:
        new_vm.release()
        log.info("execve %s: %s", path, exc)
        if failure:
            raise SysError(_guest_errno(failure[0])) from None
        if "argument list too long" in str(exc):
            raise SysError(E2BIG) from None
        if "not enough user space" in str(exc):
            raise SysError(ENOMEM) from None
        raise SysError(ENOEXEC) from None
    # the point of no return
    for other in [t for t in process.threads if t is not thread]:
        lifecycle.end_thread(other)
    if process.files is not None:
        process.files.close_on_exec()
    actions = signal.actions_of(process)
    for signum in [n for n, action in actions.items() if action[0] != SIG_IGN]:
        del actions[signum]
    signal.delivery.altstacks.pop(thread, None)      # the new image has no alternate stack
    old_vm, owned = process.vm, process.vm_owned
    process.vm, process.vm_owned = new_vm, True
    if owned:
        sched.defer(old_vm.release)
    process.path, process.argv = path, [a.decode("utf-8", "surrogateescape") for a in argv]
    thread.clear_child_tid = 0
    thread.robust_list = (0, 0)
    lifecycle.vfork_done(process)
    sched.redirect(thread, lifecycle.entry_regs(entry, sp))
    log.info("pid %d exec'd %s (entry %#x)", process.pid, path, entry)
    return None


def _guest_errno(code):
    if code in (host_errno.ENOENT, host_errno.ENOTDIR, host_errno.ELOOP, host_errno.ENAMETOOLONG):
        return code
    if code in (host_errno.EACCES, host_errno.EISDIR, host_errno.EPERM):
        return EACCES
    return code or EFAULT
