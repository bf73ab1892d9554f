"""rt_sigaction and rt_sigprocmask (recorded and reported back; handlers are not run yet),
kill, tkill and tgkill (default actions: see signal.send)."""
from .. import log
from ..errno import EINVAL, ESRCH, SysError
from ..process import current
from ..syscall.args import s32
from ..vm import user_mem
from . import NSIG, SIG_BLOCK, SIG_SETMASK, SIG_UNBLOCK, SIGACTION_FORMAT, SIGKILL, SIGSTOP
from . import actions_of, mask_of, recheck_pending, send, set_mask

_STOP_SIGNALS = (19, 20, 21, 22)      # SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU

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
        if old & ~new:
            recheck_pending(thread.process)
    return 0


def _check_signum(signum):
    signum = s32(signum)
    if not 0 <= signum <= NSIG:
        raise SysError(EINVAL)
    return signum


def _send(process, signum):
    if signum:
        if signum in _STOP_SIGNALS:
            log.warn_once(("stop", signum), "signal %d stops a process: job control is not supported, ignored", signum)
            return
        send(process, signum)


def sys_kill(pid, signum):
    """kill(2) with default actions only: a terminating signal ends the process
    (128+signum); ignored ones are dropped; handled ones are recorded (no delivery yet)."""
    from ..process import lifecycle
    pid, signum = s32(pid), _check_signum(signum)
    me = current.thread.process
    processes = [p for p in lifecycle.table().processes.values() if not p.exited]
    if pid > 0:
        targets = [p for p in lifecycle.table().processes.values() if p.pid == pid]
    elif pid == 0:
        targets = [p for p in processes if p.pgid == me.pgid]
    elif pid == -1:
        targets = [p for p in processes if p.pid != 1 and p is not me] + [me]
    else:
        targets = [p for p in processes if p.pgid == -pid]
    if not targets:
        raise SysError(ESRCH)
    for process in targets:             # the caller last: its own death ends this call
        if not process.exited:
            _send(process, signum)
    return 0


def sys_tgkill(tgid, tid, signum):
    from ..process import lifecycle
    tgid, tid, signum = s32(tgid), s32(tid), _check_signum(signum)
    if tid <= 0 or (tgid <= 0 and tgid != -1):
        raise SysError(EINVAL)
    thread = lifecycle.table().threads.get(tid)
    if thread is None or (tgid != -1 and thread.process.pid != tgid):
        raise SysError(ESRCH)
    # without handlers, a thread-directed signal acts on its whole process
    _send(thread.process, signum)
    return 0


def sys_tkill(tid, signum):
    return sys_tgkill(-1, tid, signum)


SYSCALLS = {"rt_sigaction": sys_rt_sigaction, "rt_sigprocmask": sys_rt_sigprocmask,
            "kill": sys_kill, "tkill": sys_tkill, "tgkill": sys_tgkill}
