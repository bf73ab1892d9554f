"""Signals. For now dispositions and masks are recorded per process and thread so
that programs (musl's abort, raise, pthread set-up) see consistent answers;
delivery comes with processes and threads (the next brick)."""
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
