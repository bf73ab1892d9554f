"""Process and thread system calls: exit, ids, arch_prctl, rlimits."""
from .. import sched
from ..errno import EINVAL, EPERM, ESRCH, SysError
from ..syscall.args import s32, u32
from ..vm import user_mem
from . import current, lifecycle
from .task import RLIM_NLIMITS

ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_GS = 0x1001, 0x1002, 0x1003, 0x1004
_USER_ADDR_LIMIT = 1 << 47


def sys_exit(status):
    # one thread per process so far: the last thread's exit ends the process
    lifecycle.exit_group(current.thread.process, s32(status))
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
        # recorded and reported; the memory limits are enforced by the enclave's own
        # sizes (user_space_size, default_heap_size, default_stack_size) instead
        limits[resource] = list(new)
    return 0


def sys_getrlimit(resource, rlim):
    return sys_prlimit64(0, resource, 0, rlim)


def sys_setrlimit(resource, rlim):
    return sys_prlimit64(0, resource, rlim, 0)


def _zero():
    return 0


SYSCALLS = {
    "exit": sys_exit, "exit_group": sys_exit_group,
    "getpid": sys_getpid, "getppid": sys_getppid, "gettid": sys_gettid,
    "set_tid_address": sys_set_tid_address, "set_robust_list": sys_set_robust_list,
    "arch_prctl": sys_arch_prctl, "prlimit64": sys_prlimit64,
    "getrlimit": sys_getrlimit, "setrlimit": sys_setrlimit,
    # Occlum runs everything as root and offers no set*id
    "getuid": _zero, "geteuid": _zero, "getgid": _zero, "getegid": _zero,
    "sched_yield": _zero,
}
