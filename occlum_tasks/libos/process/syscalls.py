"""Process and thread system calls: exit, ids, arch_prctl, rlimits; clone (clone.py),
execve (exec.py), wait4 and process groups (wait.py), futex (futex.py)."""
from .. import sched
from ..errno import EINVAL, EPERM, ESRCH, SysError
from ..syscall.args import s32, u32
from ..vm import user_mem
from . import current, lifecycle
from .task import RLIM_NLIMITS

ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_GS = 0x1001, 0x1002, 0x1003, 0x1004
_USER_ADDR_LIMIT = 1 << 47


def sys_exit(status):
    # this thread only: the last one's exit ends the process
    lifecycle.exit_thread(current.thread, s32(status))
    return None


def sys_exit_group(status):
    lifecycle.exit_group(current.thread.process, s32(status))
    return None


def sys_getpid():
    return current.thread.process.pid


def sys_getppid():
    return current.thread.process.ppid


def sys_gettid():
    return current.thread.tid


def sys_set_tid_address(tidptr):
    current.thread.clear_child_tid = tidptr
    return current.thread.tid


def sys_set_robust_list(head, length):
    if length != 24:          # sizeof(struct robust_list_head)
        raise SysError(EINVAL)
    current.thread.robust_list = (head, length)
    return 0


def sys_get_robust_list(tid, head_ptr, len_ptr):
    tid = s32(tid)
    thread = current.thread if tid == 0 else lifecycle.table().threads.get(tid)
    if thread is None:
        raise SysError(ESRCH)
    head, length = thread.robust_list
    user_mem.write_struct("<Q", head_ptr, head)
    user_mem.write_struct("<Q", len_ptr, length or 24)
    return 0


def sys_arch_prctl(code, addr):
    code = u32(code)
    if code == ARCH_SET_FS:
        if addr >= _USER_ADDR_LIMIT:
            raise SysError(EPERM)
        sched.set_fs_base(addr)
        return 0
    if code == ARCH_GET_FS:
        user_mem.write_struct("<Q", addr, sched.get_fs_base())
        return 0
    if code in (ARCH_SET_GS, ARCH_GET_GS):
        # GS belongs to the LibOS in Occlum; user code must not move it
        raise SysError(EINVAL)
    raise SysError(EINVAL)


def _rlimits(pid):
    pid = s32(pid)
    process = current.thread.process
    if pid not in (0, process.pid):
        other = lifecycle.table().processes.get(pid)
        if other is None:
            raise SysError(ESRCH)
        process = other
    return process.rlimits


def sys_prlimit64(pid, resource, new_limit, old_limit):
    resource = u32(resource)
    if resource >= RLIM_NLIMITS:
        raise SysError(EINVAL)
    limits = _rlimits(pid)
    new = user_mem.read_struct("<QQ", new_limit) if new_limit else None
    if new is not None and new[0] > new[1]:
        raise SysError(EINVAL)
    if new is not None and new[1] > limits[resource][1]:
        raise SysError(EPERM)          # raising a hard limit needs privilege
    if old_limit:
        user_mem.write_struct("<QQ", old_limit, *limits[resource])
    if new is not None:
        # RLIMIT_DATA and RLIMIT_STACK size the heap and stack of the programs this
        # process executes or spawns (as Occlum's per-process ulimit); the others are
        # recorded and reported, the enclave's own sizes being the enforced limits
        limits[resource] = list(new)
    return 0


def sys_getrlimit(resource, rlim):
    return sys_prlimit64(0, resource, 0, rlim)


def sys_setrlimit(resource, rlim):
    return sys_prlimit64(0, resource, rlim, 0)


def _zero():
    return 0


# clone, execve, futex and wait4 live in their own modules, imported at their first
# call: `occlum run` of a program that never uses them does not pay for compiling
# them (~5 ms without a bytecode cache)
_lazy_sys_clone = None


def sys_clone(flags, stack, parent_tid, child_tid, tls):
    global _lazy_sys_clone
    if _lazy_sys_clone is None:
        from .clone import sys_clone as _lazy_sys_clone
    return _lazy_sys_clone(flags, stack, parent_tid, child_tid, tls)


_lazy_sys_vfork = None


def sys_vfork():
    global _lazy_sys_vfork
    if _lazy_sys_vfork is None:
        from .clone import sys_vfork as _lazy_sys_vfork
    return _lazy_sys_vfork()


_lazy_sys_fork = None


def sys_fork():
    global _lazy_sys_fork
    if _lazy_sys_fork is None:
        from .clone import sys_fork as _lazy_sys_fork
    return _lazy_sys_fork()


_lazy_sys_execve = None


def sys_execve(path, argv, envp):
    global _lazy_sys_execve
    if _lazy_sys_execve is None:
        from .exec import sys_execve as _lazy_sys_execve
    return _lazy_sys_execve(path, argv, envp)


_lazy_sys_futex = None


def sys_futex(uaddr, op, val, timeout, uaddr2, val3):
    global _lazy_sys_futex
    if _lazy_sys_futex is None:
        from .futex import sys_futex as _lazy_sys_futex
    return _lazy_sys_futex(uaddr, op, val, timeout, uaddr2, val3)


_lazy_sys_wait4 = None


def sys_wait4(pid, status, options, rusage):
    global _lazy_sys_wait4
    if _lazy_sys_wait4 is None:
        from .wait import sys_wait4 as _lazy_sys_wait4
    return _lazy_sys_wait4(pid, status, options, rusage)


_lazy_sys_getpgid = None


def sys_getpgid(pid):
    global _lazy_sys_getpgid
    if _lazy_sys_getpgid is None:
        from .wait import sys_getpgid as _lazy_sys_getpgid
    return _lazy_sys_getpgid(pid)


_lazy_sys_getpgrp = None


def sys_getpgrp():
    global _lazy_sys_getpgrp
    if _lazy_sys_getpgrp is None:
        from .wait import sys_getpgrp as _lazy_sys_getpgrp
    return _lazy_sys_getpgrp()


_lazy_sys_setpgid = None


def sys_setpgid(pid, pgid):
    global _lazy_sys_setpgid
    if _lazy_sys_setpgid is None:
        from .wait import sys_setpgid as _lazy_sys_setpgid
    return _lazy_sys_setpgid(pid, pgid)


_lazy_sys_getsid = None


def sys_getsid(pid):
    global _lazy_sys_getsid
    if _lazy_sys_getsid is None:
        from .wait import sys_getsid as _lazy_sys_getsid
    return _lazy_sys_getsid(pid)


_lazy_sys_setsid = None


def sys_setsid():
    global _lazy_sys_setsid
    if _lazy_sys_setsid is None:
        from .wait import sys_setsid as _lazy_sys_setsid
    return _lazy_sys_setsid()


def sys_sched_yield():
    sched.yield_now()
    return 0


SYSCALLS = {
    "exit": sys_exit, "exit_group": sys_exit_group,
    "getpid": sys_getpid, "getppid": sys_getppid, "gettid": sys_gettid,
    "set_tid_address": sys_set_tid_address, "set_robust_list": sys_set_robust_list,
    "get_robust_list": sys_get_robust_list,
    "arch_prctl": sys_arch_prctl, "prlimit64": sys_prlimit64,
    "getrlimit": sys_getrlimit, "setrlimit": sys_setrlimit,
    # Occlum runs everything as root and offers no set*id
    "getuid": _zero, "geteuid": _zero, "getgid": _zero, "getegid": _zero,
    "sched_yield": sys_sched_yield,
    "clone": sys_clone, "vfork": sys_vfork, "fork": sys_fork, "execve": sys_execve, "futex": sys_futex,
    "wait4": sys_wait4, "getpgid": sys_getpgid, "getpgrp": sys_getpgrp, "setpgid": sys_setpgid,
    "getsid": sys_getsid, "setsid": sys_setsid,
}
