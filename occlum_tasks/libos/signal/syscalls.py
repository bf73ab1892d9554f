"""rt_sigaction and rt_sigprocmask: recorded and reported back (delivery comes later)."""
from ..errno import EINVAL, SysError
from ..process import current
from ..syscall.args import s32
from ..vm import user_mem
from . import NSIG, SIG_BLOCK, SIG_SETMASK, SIG_UNBLOCK, SIGACTION_FORMAT, SIGKILL, SIGSTOP
from . import actions_of, mask_of, set_mask

SIGSET_SIZE = 8


def sys_rt_sigaction(signum, act, oldact, sigsetsize):
    signum = s32(signum)
    if sigsetsize != SIGSET_SIZE or not 1 <= signum <= NSIG:
        raise SysError(EINVAL)
    actions = actions_of(current.thread.process)
    new = user_mem.read_struct(SIGACTION_FORMAT, act) if act else None
    if new is not None and signum in (SIGKILL, SIGSTOP):
        raise SysError(EINVAL)
    if oldact:
        user_mem.write_struct(SIGACTION_FORMAT, oldact, *actions.get(signum, (0, 0, 0, 0)))
    if new is not None:
        actions[signum] = new
    return 0


def sys_rt_sigprocmask(how, nset, oset, sigsetsize):
    if sigsetsize != SIGSET_SIZE:
        raise SysError(EINVAL)
    thread = current.thread
    old = mask_of(thread)
    if nset:
        (value,) = user_mem.read_struct("<Q", nset)
        how = s32(how)
        if how == SIG_BLOCK:
            new = old | value
        elif how == SIG_UNBLOCK:
            new = old & ~value
        elif how == SIG_SETMASK:
            new = value
        else:
            raise SysError(EINVAL)
    if oset:
        user_mem.write_struct("<Q", oset, old)
    if nset:
        set_mask(thread, new)
    return 0


SYSCALLS = {"rt_sigaction": sys_rt_sigaction, "rt_sigprocmask": sys_rt_sigprocmask}
