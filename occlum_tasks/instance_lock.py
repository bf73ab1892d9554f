"""One enclave at a time on an instance's writable layers: the lock run/.lock.

Two enclaves committing to one writable layer each write superblocks that name only
their own blocks and reuse blocks the other one's tree holds, which corrupts the layer
for good. So `occlum run` takes an exclusive flock(2) on run/.lock before it opens a
layer and keeps it for the life of the enclave; a second run on the same instance is
refused at once (InstanceBusy), naming the pid that holds the lock.

flock belongs to the open file, and the kernel drops it when the holder exits however
it exits (kill -9 included): a stale lock never blocks. The run that takes it next
opens the layer, and opening deletes what an interrupted commit left (docs/formats.md,
SEFS section 9, step 4 of opening), so the layer it finds is the last commit, whole.
The holder writes its pid into the file, for the refusal and for `occlum status`;
the pid there is only shown, never trusted: whether the lock is held is the kernel's
answer. The descriptor is close-on-exec: no program started later inherits it.
"""
import errno
import fcntl
import os
import stat as st_mod
import time
from contextlib import contextmanager
from pathlib import Path

from . import fsutil
from .errors import OcclumError
from .paths import RUN_DIR

LOCK_NAME = ".lock"
LOCK_FILE = RUN_DIR / LOCK_NAME
# `occlum status` takes a shared lock for a moment to ask whether an enclave runs; a
# run that meets it retries for this long before it calls the instance busy.
_RETRY_S = 0.05

_held = {}          # (st_dev, st_ino) of run/ -> [lock descriptor, holds]


class InstanceBusy(OcclumError):
    """Another enclave holds the instance's writable layers."""


def _run_dir(instance, create):
    return fsutil.open_dir(RUN_DIR, base=os.fspath(instance), create=create)


def _lock_fd(dir_fd, flags):
    fd = fsutil.open_file(dir_fd, LOCK_NAME, flags | os.O_NONBLOCK, 0o600, str(LOCK_FILE))
    if not st_mod.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OcclumError(f"{LOCK_FILE}: is not a regular file")
    return fd


def _holder(fd):
    """The pid the holder wrote, 0 if it has not written it yet (or wrote nonsense)."""
    for _ in range(20):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return int(text)
        time.sleep(0.01)        # taken an instant ago: its pid follows
    return 0


def _try_lock(fd, kind):
    deadline = time.monotonic() + _RETRY_S
    while True:
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
        if kind == fcntl.LOCK_SH or time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


@contextmanager
def hold(instance):
    """Hold the instance's lock for the body; InstanceBusy at once when another process
    holds it. Nested holds in one process share the lock (run_in_enclave, then boot)."""
    dfd = _run_dir(instance, create=True)
    try:
        st = os.fstat(dfd)
        key = (st.st_dev, st.st_ino)
        if key in _held:
            _held[key][1] += 1
            fd = None
        else:
            fd = _lock_fd(dfd, os.O_RDWR | os.O_CREAT)
    finally:
        os.close(dfd)
    if fd is not None:
        if not _try_lock(fd, fcntl.LOCK_EX):
            pid = _holder(fd)
            os.close(fd)
            who = f"pid {pid}" if pid else "pid unknown"
            raise InstanceBusy(
                f"{RUN_DIR}/: this instance is already running in an enclave ({who}); one "
                "enclave at a time uses its writable layer. To run several programs at once, "
                "start them from one program or a shell inside the enclave (`occlum start` "
                "and `occlum exec` are future work, issue 11)")
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d\n" % os.getpid(), 0)
        _held[key] = [fd, 1]
    try:
        yield
    finally:
        entry = _held[key]
        entry[1] -= 1
        if entry[1] == 0:
            del _held[key]
            try:
                os.ftruncate(entry[0], 0)      # no pid left behind to mislead
            finally:
                os.close(entry[0])             # releases the lock


def running(instance):
    """None when no enclave holds the instance's lock, else the holder's pid (0 if it is
    not known yet). Never creates anything."""
    try:
        dfd = _run_dir(instance, create=False)
    except FileNotFoundError:
        return None
    try:
        try:
            fd = _lock_fd(dfd, os.O_RDONLY)
        except FileNotFoundError:
            return None
    finally:
        os.close(dfd)
    try:
        if _try_lock(fd, fcntl.LOCK_SH):
            return None                        # closing releases the probe's lock
        return _holder(fd)
    finally:
        os.close(fd)
