"""clone, vfork and fork: new threads, and new processes as posix_spawn makes them.

A thread (CLONE_VM|CLONE_THREAD|CLONE_SIGHAND, what musl's and glibc's pthread_create
pass) starts at the return of clone with its own stack and TLS. A process needs
CLONE_VM (posix_spawn's clone(CLONE_VM|CLONE_VFORK|SIGCHLD), vfork): the child runs in
its parent's memory until it calls execve, which gives it its own range of the shared
user space. With CLONE_VFORK the parent waits until then (or until the child ends).
Copying an address space (fork, or clone without CLONE_VM) is not offered: ENOSYS, as
in Occlum.
"""
from unicorn import x86_const as x86

from .. import log, sched
from ..errno import EINVAL, ENOSYS, SysError
from ..vm import user_mem
from . import current, lifecycle

CSIGNAL = 0xFF
CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND = 0x100, 0x200, 0x400, 0x800
CLONE_PIDFD, CLONE_PTRACE, CLONE_VFORK, CLONE_PARENT = 0x1000, 0x2000, 0x4000, 0x8000
CLONE_THREAD, CLONE_NEWNS, CLONE_SYSVSEM, CLONE_SETTLS = 0x10000, 0x20000, 0x40000, 0x80000
CLONE_PARENT_SETTID, CLONE_CHILD_CLEARTID, CLONE_DETACHED = 0x100000, 0x200000, 0x400000
CLONE_UNTRACED, CLONE_CHILD_SETTID = 0x800000, 0x1000000
# what a new thread or process may ask for; namespaces, pidfds, tracing are not offered
_SUPPORTED = (CSIGNAL | CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_VFORK | CLONE_PARENT
              | CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID
              | CLONE_DETACHED | CLONE_UNTRACED | CLONE_CHILD_SETTID)
_THREAD_NEEDS = CLONE_VM | CLONE_SIGHAND


def _child_regs(stack: int) -> dict:
    """The child resumes after the syscall instruction (RIP still points at it in the
    hook) with clone's result 0, on its own stack if it has one."""
    regs = {x86.UC_X86_REG_RIP: sched.cpu().pc + 2, x86.UC_X86_REG_RAX: 0}
    if stack:
        regs[x86.UC_X86_REG_RSP] = stack
    return regs


def sys_clone(flags, stack, parent_tid, child_tid, tls):
    if flags & ~_SUPPORTED:
        log.warn_once(("flags", flags & ~_SUPPORTED), "clone flags %#x are not supported: EINVAL", flags & ~_SUPPORTED)
        raise SysError(EINVAL)
    if flags & CLONE_THREAD:
        return _new_thread(flags, stack, parent_tid, child_tid, tls)
    if not flags & CLONE_VM:
        log.warn_once("fork", "fork (clone without CLONE_VM) is not supported, as in Occlum: ENOSYS; use posix_spawn or vfork")
        raise SysError(ENOSYS)
    return _new_process(flags, stack, parent_tid, child_tid, tls)


def _new_thread(flags, stack, parent_tid, child_tid, tls):
    if flags & _THREAD_NEEDS != _THREAD_NEEDS or flags & CLONE_VFORK:
        raise SysError(EINVAL)
    parent = current.thread
    process = parent.process
    thread = lifecycle.table().new_thread(process)       # EAGAIN past max_num_of_threads
    regs = _child_regs(stack)
    try:
        _set_tids(thread, flags, parent_tid, child_tid)
    except SysError:
        lifecycle.table().remove_thread(thread)
        raise
    if flags & CLONE_SETTLS:
        regs[x86.UC_X86_REG_FS_BASE] = tls
    sched.start_thread(thread, regs)
    log.debug("clone: thread %d in pid %d", thread.tid, process.pid)
    return thread.tid


def _set_tids(thread, flags, parent_tid, child_tid):
    if flags & CLONE_PARENT_SETTID:
        user_mem.write_struct("<i", parent_tid, thread.tid)
    if flags & CLONE_CHILD_SETTID:
        user_mem.write_struct("<i", child_tid, thread.tid)
    if flags & CLONE_CHILD_CLEARTID:
        thread.clear_child_tid = child_tid


def _new_process(flags, stack, parent_tid, child_tid, tls):
    from .. import fs
    if flags & (CLONE_SIGHAND | CLONE_FILES | CLONE_FS):
        # shared descriptor tables or file system views between processes are not
        # kept: say so rather than copy silently
        log.warn_once(("share", flags), "clone of a process sharing files/fs/signal handlers (flags %#x): EINVAL", flags)
        raise SysError(EINVAL)
    parent = current.thread.process
    table = lifecycle.table()
    ppid = parent.ppid if flags & CLONE_PARENT else parent.pid
    child = table.new_process(ppid, parent.path, parent.argv, parent.vm, fs.clone_files(parent.files),
                              parent.limits, parent.fs.clone() if parent.fs is not None else None)
    child.vm_owned = False            # it borrows its parent's memory until execve
    child.pgid, child.sid = parent.pgid, parent.sid
    child.rlimits = [list(pair) for pair in parent.rlimits]
    thread = child.threads[0]
    regs = _child_regs(stack)
    if flags & CLONE_SETTLS:
        regs[x86.UC_X86_REG_FS_BASE] = tls
    _set_tids(thread, flags, parent_tid, child_tid)
    sched.start_thread(thread, regs)
    log.debug("clone: pid %d from pid %d (flags %#x)", child.pid, parent.pid, flags)
    if flags & CLONE_VFORK:
        child.vfork_wait = sched.WaitQueue("vfork child %d to exec or exit" % child.pid)
        # the parent resumes with the child's pid when the child execs or exits
        raise sched.Block([child.vfork_wait], interruptible=False)
    return child.pid


def sys_vfork():
    return sys_clone(CLONE_VM | CLONE_VFORK | 17, 0, 0, 0, 0)


def sys_fork():
    return sys_clone(17, 0, 0, 0, 0)
