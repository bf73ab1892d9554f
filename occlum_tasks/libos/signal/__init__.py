"""Signals. Dispositions and masks are recorded per process and thread so that
programs (musl's abort, raise, pthread set-up) see consistent answers. Sending
(`send`: kill, tkill, tgkill, SIGPIPE, SIGCHLD) applies the default action: a
terminating signal ends the process with 128+signum; a signal with a handler is only
recorded as pending, since handlers are not run yet."""
import weakref

NSIG = 64
SIGKILL, SIGSTOP = 9, 19
SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 0, 1, 2
# a struct k_sigaction as the kernel takes it: handler, flags, restorer, mask
SIGACTION_FORMAT = "<QQQQ"
UNBLOCKABLE = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1))

# keyed by the process and thread objects: their state stays theirs, and goes with them
_actions = weakref.WeakKeyDictionary()
_masks = weakref.WeakKeyDictionary()


def actions_of(process) -> dict:
    """signum -> (handler, flags, restorer, mask); absent means SIG_DFL."""
    return _actions.setdefault(process, {})


def mask_of(thread) -> int:
    return _masks.get(thread, 0)


def set_mask(thread, mask: int) -> None:
    _masks[thread] = mask & ~UNBLOCKABLE


SIG_DFL, SIG_IGN = 0, 1
SIGPIPE, SIGCHLD = 13, 17
# signals whose default action ends the process (all but SIGCHLD, SIGCONT, SIGSTOP,
# SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGWINCH)
_DEFAULT_IGNORE = {17, 18, 19, 20, 21, 22, 23, 28}
_pending = weakref.WeakKeyDictionary()


def pending_of(process) -> int:
    """Signals recorded for `process` and not delivered (no handlers are run yet)."""
    return _pending.get(process, 0)


def send(process, signum: int) -> None:
    """Send `signum` to `process`: the default action of a terminating signal ends it
    (with 128+signum as its status); an ignored one is dropped; one with a handler, or
    blocked, is recorded as pending (delivery to handlers comes later)."""
    from ..process import lifecycle
    handler = actions_of(process).get(signum, (SIG_DFL,))[0]
    if handler == SIG_IGN or (handler == SIG_DFL and signum in _DEFAULT_IGNORE):
        return
    bit = 1 << (signum - 1)
    blocked = signum != SIGKILL and bool(process.threads) and all(mask_of(t) & bit for t in process.threads)
    if handler == SIG_DFL and not blocked:
        lifecycle.terminate_by_signal(process, signum)
        return
    _pending[process] = _pending.get(process, 0) | (1 << (signum - 1))


def recheck_pending(process) -> None:
    """A mask changed: pending signals now unblocked with their default action take
    it (musl's raise and abort block signals around tkill, then unblock)."""
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
