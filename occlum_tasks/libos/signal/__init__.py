"""Signals. Dispositions and masks are recorded per process and thread. Sending
(`send` to a process: kill, SIGPIPE, SIGCHLD; `send_thread`: tkill, tgkill) applies
the default action of a signal with no handler: a terminating signal ends the process
with 128+signum; an ignored one is dropped. A signal with a handler, or blocked, is
recorded as pending and `armed` is set: the SYSCALL hook and the scheduler then call
delivery.py on the way back to user mode, which builds the handler's frame. A thread
blocked in a system call is woken for a handler (-EINTR, or the call runs again
after the handler with SA_RESTART)."""
import weakref

NSIG = 64
SIGKILL, SIGSTOP = 9, 19
SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 0, 1, 2
# a struct k_sigaction as the kernel takes it: handler, flags, restorer, mask
SIGACTION_FORMAT = "<QQQQ"
UNBLOCKABLE = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1))
SA_SIGINFO, SA_RESTORER, SA_ONSTACK, SA_RESTART = 4, 0x04000000, 0x08000000, 0x10000000
SA_NODEFER, SA_RESETHAND = 0x40000000, 0x80000000
SI_USER, SI_TKILL, SI_KERNEL = 0, -6, 0x80

# keyed by the process and thread objects: their state stays theirs, and goes with them
_actions = weakref.WeakKeyDictionary()
_masks = weakref.WeakKeyDictionary()
# some signal is pending somewhere: the SYSCALL hook's one test per call
armed = [False]


def actions_of(process) -> dict:
    """signum -> (handler, flags, restorer, mask); absent means SIG_DFL."""
    return _actions.setdefault(process, {})


def mask_of(thread) -> int:
    return _masks.get(thread, 0)


def set_mask(thread, mask: int) -> None:
    _masks[thread] = mask & ~UNBLOCKABLE
    if _pending.get(thread.process) or _thread_pending.get(thread):
        armed[0] = True          # a signal it blocked may be deliverable now


SIG_DFL, SIG_IGN = 0, 1
SIGPIPE, SIGCHLD = 13, 17
# signals whose default action ends the process (all but SIGCHLD, SIGCONT, SIGSTOP,
# SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGWINCH)
_DEFAULT_IGNORE = {17, 18, 19, 20, 21, 22, 23, 28}
_pending = weakref.WeakKeyDictionary()          # process -> bits
_thread_pending = weakref.WeakKeyDictionary()   # thread -> bits (tkill, tgkill)
_infos = weakref.WeakKeyDictionary()            # process or thread -> {signum: (code, pid)}
# threads parked in rt_sigtimedwait -> the set they wait for
sigwaiters = weakref.WeakKeyDictionary()


def pending_of(process) -> int:
    """Signals recorded for `process` as a whole and not delivered."""
    return _pending.get(process, 0)


def thread_pending_of(thread) -> int:
    return _thread_pending.get(thread, 0)


def take(thread, bit: int):
    """Dequeue one pending signal of `thread` (its own first): (code, pid) it was sent
    with."""
    signum = bit.bit_length()
    if _thread_pending.get(thread, 0) & bit:
        _thread_pending[thread] &= ~bit
        return _infos.get(thread, {}).pop(signum, (SI_USER, 0))
    _pending[thread.process] = _pending.get(thread.process, 0) & ~bit
    return _infos.get(thread.process, {}).pop(signum, (SI_USER, 0))


def _handler_of(process, signum):
    return actions_of(process).get(signum, (SIG_DFL,))[0]


def send_thread(thread, signum: int, code: int = SI_TKILL, pid: int = 0) -> None:
    """A signal for one thread (tkill, tgkill): with its default action it acts on the
    whole process, as on Linux."""
    process = thread.process
    handler = _handler_of(process, signum)
    bit = 1 << (signum - 1)
    if handler == SIG_DFL or handler == SIG_IGN or signum == SIGKILL:
        if handler == SIG_DFL and mask_of(thread) & bit and signum != SIGKILL:
            _record(thread, _thread_pending, signum, code, pid)   # acts when unblocked
            return
        send(process, signum, code, pid)
        return
    _record(thread, _thread_pending, signum, code, pid)
    _interrupt(thread, signum)


def _record(target, table, signum, code, pid):
    table[target] = table.get(target, 0) | (1 << (signum - 1))
    _infos.setdefault(target, {})[signum] = (code, pid)
    armed[0] = True


def _interrupt(thread, signum) -> None:
    """`thread` may take `signum` now: if it is blocked in a system call, wake it so
    that the handler runs (the call fails with EINTR, or runs again after the handler
    with SA_RESTART); one waiting for it in rt_sigtimedwait takes it."""
    from .. import sched
    from ..errno import EINTR
    if thread.state != sched.BLOCKED:
        return
    bit = 1 << (signum - 1)
    if sigwaiters.get(thread, 0) & bit:
        sched.wake_thread(thread)              # re-executed: dequeues it
        return
    if mask_of(thread) & bit:
        return
    flags = actions_of(thread.process).get(signum, (0, 0))[1]
    sched.interrupt(thread, -EINTR, bool(flags & SA_RESTART))


def send(process, signum: int, code: int = SI_USER, pid: int = 0) -> None:
    """Send `signum` to `process`: the default action of a terminating signal ends it
    (with 128+signum as its status); an ignored one is dropped; one with a handler, or
    blocked, is recorded as pending and delivered by a thread that does not block it."""
    from ..process import lifecycle
    handler = _handler_of(process, signum)
    if handler == SIG_IGN or (handler == SIG_DFL and signum in _DEFAULT_IGNORE):
        if not any(sigwaiters.get(t, 0) & (1 << (signum - 1)) for t in process.threads):
            return
    bit = 1 << (signum - 1)
    blocked = signum != SIGKILL and bool(process.threads) and all(mask_of(t) & bit for t in process.threads)
    if handler == SIG_DFL and not blocked and signum not in _DEFAULT_IGNORE:
        lifecycle.terminate_by_signal(process, signum)
        return
    _record(process, _pending, signum, code, pid)
    for thread in process.threads:
        if sigwaiters.get(thread, 0) & bit or not mask_of(thread) & bit:
            _interrupt(thread, signum)
            break


def recheck_pending(process) -> None:
    """A mask changed: pending signals now unblocked with their default action take
    it (musl's raise and abort block signals around tkill, then unblock)."""
    for thread in process.threads:
        mine = _thread_pending.get(thread, 0) & ~mask_of(thread)
        for signum in range(1, NSIG + 1):
            bit = 1 << (signum - 1)
            if mine & bit and _handler_of(process, signum) == SIG_DFL:
                _thread_pending[thread] &= ~bit
                send(process, signum)
                if process.exited:
                    return
    pending = _pending.get(process, 0)
    if not pending:
        return
    for signum in range(1, NSIG + 1):
        bit = 1 << (signum - 1)
        if pending & bit and actions_of(process).get(signum, (SIG_DFL,))[0] == SIG_DFL:
            _pending[process] = _pending.get(process, 0) & ~bit
            send(process, signum)          # blocked still: recorded again
            if process.exited:
                return
