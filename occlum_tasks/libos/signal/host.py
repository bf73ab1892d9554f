"""The host's SIGINT and SIGTERM during a run (`occlum run`, Ctrl-C): forwarded to the
enclave's first process, as Occlum does. The Python handler only records the signal
and sets `armed`: LibOS state is never touched from inside it (it may run in the
middle of any LibOS code); the signal is sent at the next point where delivery is
looked at anyway (after a system call, before a thread resumes, when the scheduler is
idle). The default action ends the run with 130 or 143."""
import contextlib
import os
import signal as host_signal
import threading
import time

from . import SI_USER, armed, send

FORWARDED = (host_signal.SIGINT, host_signal.SIGTERM)
_received = []
_recorded = [0]         # host signals seen by the Python handler so far
RETRIES, RETRY_AFTER = 100, 0.01


def _record(signum, _frame):
    _received.append(signum)
    _recorded[0] += 1
    armed[0] = True


@contextlib.contextmanager
def forwarding():
    """Forward the host's SIGINT/SIGTERM while the run lasts (from the main thread
    only: Python installs signal handlers nowhere else)."""
    _received.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: host_signal.signal(s, _record) for s in FORWARDED}
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    old_wakeup = host_signal.set_wakeup_fd(wake_w)
    watcher = threading.Thread(target=_watch, args=(wake_r,), name="occlum-py host signals", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        host_signal.set_wakeup_fd(old_wakeup)
        for signum, handler in previous.items():
            host_signal.signal(signum, handler)
        os.write(wake_w, b"\0")        # the watcher's cue to end
        watcher.join(1)
        os.close(wake_r)
        os.close(wake_w)
        _received.clear()


def _watch(wake_r) -> None:
    """A host thread: Python runs a signal's handler only when the main thread runs
    Python code, which a guest computing without system calls never does. The C-level
    handler writes the signal number to the wakeup pipe; this thread then stops the
    CPU (exactly, between two blocks), so that the main thread gets back to the
    scheduler and the signal is forwarded."""
    from .. import sched
    while True:
        try:
            data = os.read(wake_r, 16)
        except OSError:
            return
        if not data or b"\0" in data:
            return
        # until the main thread has run _record: a stop that lands just before a
        # slice starts is reset by emu_start, so stop again a little later
        recorded = _recorded[0]
        for _ in range(RETRIES):
            sched.stop_for_host_signal()
            time.sleep(RETRY_AFTER)
            if _recorded[0] != recorded:
                break


def waiting() -> bool:
    return bool(_received)


def forward() -> None:
    """Send the recorded host signals to the first process (pid 1)."""
    from ..process import lifecycle
    while _received:
        signum = int(_received.pop(0))
        init = lifecycle.table().processes.get(lifecycle.INIT_PID)
        if init is not None and not init.exited:
            send(init, signum, SI_USER, 0)
