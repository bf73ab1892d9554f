"""rt_sigaction, rt_sigprocmask, rt_sigpending, rt_sigsuspend, rt_sigtimedwait,
sigaltstack, rt_sigreturn; kill, tkill and tgkill (see signal.send and delivery.py)."""
import struct
import time

from .. import log, sched
from ..errno import EAGAIN, EINTR, EINVAL, ENOMEM, EPERM, ESRCH, SysError
from ..process import current
from ..syscall.args import s32
from ..vm import user_mem
from . import NSIG, SIG_BLOCK, SIG_SETMASK, SIG_UNBLOCK, SIGACTION_FORMAT, SIGKILL, SIGSTOP, UNBLOCKABLE
from . import SI_TKILL, SI_USER, actions_of, delivery, frame, mask_of, pending_of, recheck_pending, send
from . import send_thread, set_mask, sigwaiters, take, thread_pending_of

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
    if new is not None:
        new = (new[0], new[1], new[2], new[3] & ~UNBLOCKABLE)
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


def _stop_signal(signum) -> bool:
    if signum in _STOP_SIGNALS:
        log.warn_once(("stop", signum), "signal %d stops a process: job control is not supported, ignored", signum)
        return True
    return False


def _send(process, signum):
    if signum and not _stop_signal(signum):
        send(process, signum, SI_USER, current.thread.process.pid)


def sys_kill(pid, signum):
    """kill(2): see signal.send (default actions, or a handler run by a thread that does
    not block the signal; si_pid is the caller's pid)."""
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
    if signum and not _stop_signal(signum):
        send_thread(thread, signum, SI_TKILL, current.thread.process.pid)
    return 0


def sys_tkill(tid, signum):
    return sys_tgkill(-1, tid, signum)


def sys_rt_sigreturn():
    """Back from a handler: every register, the FP state and the mask from the frame's
    ucontext, which the handler's `ret` to the restorer left at RSP."""
    from unicorn import x86_const as x86
    cpu = sched.cpu()
    rip, mask = frame.pop(cpu, cpu.reg_read(x86.UC_X86_REG_RSP))
    set_mask(current.thread, mask)
    recheck_pending(current.thread.process)
    cpu.set_pc(rip - 2)              # Unicorn adds 2 when the hook returns
    return None                      # RAX is the restored one


def sys_rt_sigpending(set_addr, sigsetsize):
    if sigsetsize > SIGSET_SIZE:
        raise SysError(EINVAL)
    thread = current.thread
    pending = (thread_pending_of(thread) | pending_of(thread.process)) & mask_of(thread)
    user_mem.write(set_addr, struct.pack("<Q", pending)[:sigsetsize])
    return 0


def _read_set(addr, sigsetsize):
    if sigsetsize != SIGSET_SIZE:
        raise SysError(EINVAL)
    return user_mem.read_struct("<Q", addr)[0]


_SUSPENDED = object()


def sys_rt_sigsuspend(set_addr, sigsetsize):
    """Wait with a temporary mask until a handler runs: -EINTR, and the handler's frame
    restores the old mask (delivery.suspended_masks)."""
    thread = current.thread
    state, _ = sched.restart_state()
    if state is not _SUSPENDED:
        temporary = _read_set(set_addr, sigsetsize)
        delivery.suspended_masks[thread] = mask_of(thread)
        set_mask(thread, temporary)
    if delivery.next_signal(thread):
        return -EINTR                # delivered on the way back
    raise sched.Block((), restart=_SUSPENDED, what="rt_sigsuspend")


def sys_rt_sigtimedwait(set_addr, info_addr, timeout_addr, sigsetsize):
    """Take a pending signal of the set (usually blocked) without running a handler."""
    thread = current.thread
    wanted = _read_set(set_addr, sigsetsize) & ~UNBLOCKABLE
    state, timed_out = sched.restart_state()
    sigwaiters.pop(thread, None)
    ready = (thread_pending_of(thread) | pending_of(thread.process)) & wanted
    if ready:
        bit = ready & -ready
        signum = bit.bit_length()
        code, pid = take(thread, bit)
        if info_addr:
            user_mem.write(info_addr, frame.siginfo(signum, code, pid))
        return signum
    if timed_out:
        raise SysError(EAGAIN)
    if delivery.next_signal(thread):
        raise SysError(EINTR)        # a handler runs instead
    deadline = state if isinstance(state, int) else None
    if deadline is None and timeout_addr:
        sec, nsec = user_mem.read_struct("<qq", timeout_addr)
        if sec < 0 or not 0 <= nsec < 1_000_000_000:
            raise SysError(EINVAL)
        if sec == 0 and nsec == 0:
            raise SysError(EAGAIN)
        deadline = time.monotonic_ns() + sec * 1_000_000_000 + nsec
    sigwaiters[thread] = wanted
    raise sched.Block((), deadline, restart=deadline, what="rt_sigtimedwait")


MINSIGSTKSZ = 2048


def sys_sigaltstack(ss, old_ss):
    from unicorn import x86_const as x86
    thread = current.thread
    stack = delivery.altstacks.get(thread, (0, delivery.SS_DISABLE, 0))
    on = delivery.on_stack(thread, sched.cpu().reg_read(x86.UC_X86_REG_RSP))
    if ss:
        sp, flags, size = user_mem.read_struct("<Qi4xQ", ss)
        if on:
            raise SysError(EPERM)
        if flags & ~(delivery.SS_DISABLE | (1 << 31)):      # SS_AUTODISARM is accepted
            raise SysError(EINVAL)
        if flags & delivery.SS_DISABLE:
            new = (0, delivery.SS_DISABLE, 0)
        elif size < MINSIGSTKSZ:
            raise SysError(ENOMEM)
        else:
            new = (sp, 0, size)
    if old_ss:
        user_mem.write_struct("<Qi4xQ", old_ss, stack[0], delivery.SS_ONSTACK if on else stack[1], stack[2])
    if ss:
        delivery.altstacks[thread] = new
    return 0


SYSCALLS = {"rt_sigaction": sys_rt_sigaction, "rt_sigprocmask": sys_rt_sigprocmask,
            "kill": sys_kill, "tkill": sys_tkill, "tgkill": sys_tgkill,
            "rt_sigreturn": sys_rt_sigreturn, "rt_sigpending": sys_rt_sigpending,
            "rt_sigsuspend": sys_rt_sigsuspend, "rt_sigtimedwait": sys_rt_sigtimedwait,
            "sigaltstack": sys_sigaltstack}
