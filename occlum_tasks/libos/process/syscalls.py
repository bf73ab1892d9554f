"""Process and thread system calls: exit, ids, arch_prctl, rlimits; clone (clone.py),
execve (exec.py), wait4 and process groups (wait.py), futex (futex.py)."""
from .. import sched
from ..errno import EINVAL, EPERM, ESRCH, SysError
from ..syscall.args import s32, u32
from ..vm import user_mem
from ..syscall.lazy import lazy
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
sys_clone = lazy("occlum_tasks.libos.process.clone", "sys_clone", 5)
sys_vfork = lazy("occlum_tasks.libos.process.clone", "sys_vfork", 0)
sys_fork = lazy("occlum_tasks.libos.process.clone", "sys_fork", 0)
sys_execve = lazy("occlum_tasks.libos.process.exec", "sys_execve", 3)
sys_futex = lazy("occlum_tasks.libos.process.futex", "sys_futex", 6)
sys_wait4 = lazy("occlum_tasks.libos.process.wait", "sys_wait4", 4)
sys_getpgid = lazy("occlum_tasks.libos.process.wait", "sys_getpgid", 1)
sys_getpgrp = lazy("occlum_tasks.libos.process.wait", "sys_getpgrp", 0)
sys_setpgid = lazy("occlum_tasks.libos.process.wait", "sys_setpgid", 2)
sys_getsid = lazy("occlum_tasks.libos.process.wait", "sys_getsid", 1)
sys_setsid = lazy("occlum_tasks.libos.process.wait", "sys_setsid", 0)


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
