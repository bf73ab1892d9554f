"""wait4 and process groups and sessions.

A zombie keeps its wait status in the process table until its parent collects it.
A parent with no child in that state waits on its own child_wait queue; an exiting
child wakes it and the wait4 call runs again.
"""
from .. import sched
from ..errno import ECHILD, EINVAL, EPERM, ESRCH, SysError
from ..syscall.args import s32, u32
from ..vm import user_mem
from . import current, lifecycle

WNOHANG, WUNTRACED, WCONTINUED = 1, 2, 8
__WNOTHREAD, __WALL, __WCLONE = 0x20000000, 0x40000000, 0x80000000
_OPTIONS = WNOHANG | WUNTRACED | WCONTINUED | __WNOTHREAD | __WALL | __WCLONE
RUSAGE_SIZE = 144


def _matches(pid: int, process, child) -> bool:
    if pid > 0:
        return child.pid == pid
    if pid == -1:
        return True
    if pid == 0:
        return child.pgid == process.pgid
    return child.pgid == -pid


def sys_wait4(pid, status_ptr, options, rusage_ptr):
    pid, options = s32(pid), u32(options)
    if options & ~_OPTIONS or pid == -0x80000000:
        raise SysError(EINVAL)
    process = current.thread.process
    children = [c for c in lifecycle.table().children_of(process) if _matches(pid, process, c)]
    if not children:
        raise SysError(ECHILD)
    for child in sorted(children, key=lambda c: c.pid):
        if child.exited:
            # stopped and continued children do not exist here (no job control)
            if status_ptr:
                user_mem.write_struct("<i", status_ptr, child.exit_status)
            if rusage_ptr:
                user_mem.write(rusage_ptr, bytes(RUSAGE_SIZE))
            lifecycle.reap(child)
            return child.pid
    if options & WNOHANG:
        return 0
    raise sched.Block([process.child_wait])


def _process(pid: int):
    pid = s32(pid)
    if pid == 0:
        return current.thread.process
    process = lifecycle.table().processes.get(pid)
    if process is None or pid < 0:
        raise SysError(ESRCH)
    return process


def sys_getpgid(pid):
    return _process(pid).pgid


def sys_getpgrp():
    return current.thread.process.pgid


def sys_setpgid(pid, pgid):
    me = current.thread.process
    target = _process(pid)
    pgid = s32(pgid)
    if pgid < 0:
        raise SysError(EINVAL)
    if target is not me and target.ppid != me.pid:
        raise SysError(ESRCH)
    if target.sid != me.sid or target.pid == target.sid:
        raise SysError(EPERM)          # a session leader stays in its group
    pgid = pgid or target.pid
    if pgid != target.pid and not any(p.pgid == pgid and p.sid == me.sid
                                      for p in lifecycle.table().processes.values()):
        raise SysError(EPERM)
    target.pgid = pgid
    return 0


def sys_getsid(pid):
    return _process(pid).sid


def sys_setsid():
    me = current.thread.process
    if any(p.pgid == me.pid for p in lifecycle.table().processes.values()):
        raise SysError(EPERM)          # already a group leader
    me.sid = me.pgid = me.pid
    return me.pid

