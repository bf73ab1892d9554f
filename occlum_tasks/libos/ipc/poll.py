"""poll, ppoll, select and pselect6 over any descriptor.

Readiness: a handle that knows it answers `poll()` (pipes); the run's host streams
(stdin...) are asked with select() and a zero timeout; anything else (regular files,
devices) is always ready, as on Linux. With nothing ready the thread parks on the wait
queues of the pipes and on the host descriptors, with the call's deadline kept across
re-executions (sched.restart_state), and the call runs again when one of them moves.
"""
import select
import struct
import time

from .. import sched
from ..errno import EBADF, EINVAL, SysError
from ..process import current
from ..syscall.args import s32
from ..vm import user_mem

POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLNVAL = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20
POLLRDNORM, POLLRDBAND, POLLWRNORM, POLLWRBAND = 0x40, 0x80, 0x100, 0x200
_IN = POLLIN | POLLRDNORM
_OUT = POLLOUT | POLLWRNORM
_ALWAYS = POLLERR | POLLHUP | POLLNVAL          # reported whether asked or not
NFDS_MAX = 1 << 20


def _readiness(file):
    """(events ready now, wait queue or None, host fd or None) of an open file."""
    handle = file.handle
    if handle is None:
        return POLLNVAL, None, None
    probe = getattr(handle, "poll", None)
    if probe is not None:
        mask = probe()
        if mask & POLLIN:
            mask |= POLLRDNORM
        if mask & POLLOUT:
            mask |= POLLWRNORM
        return mask, handle.wait_queue(), None
    host_fd = getattr(handle, "host_fd", None)
    if host_fd is not None:
        try:
            r, w, _ = select.select([host_fd], [host_fd], [], 0)
        except (OSError, ValueError):
            return POLLERR, None, None
        return (_IN if r else 0) | (_OUT if w else 0), None, host_fd
    return _IN | _OUT, None, None


class _Waits:
    """What a poll that found nothing ready parks on."""

    def __init__(self):
        self.queues, self.host_read, self.host_write = [], [], []

    def add(self, queue, host_fd, events):
        if queue is not None and queue not in self.queues:
            self.queues.append(queue)
        if host_fd is not None:
            if events & _IN:
                self.host_read.append(host_fd)
            if events & _OUT:
                self.host_write.append(host_fd)


def _deadline_from(state, timeout_ns):
    """The absolute deadline (host monotonic ns; None: forever) of this call, kept
    across re-executions in the restart state."""
    if state is not None and state[0] == "poll":
        return state[1]
    if timeout_ns is None:
        return None
    return time.monotonic_ns() + timeout_ns


def _block(waits, deadline, what):
    raise sched.Block(waits.queues, deadline, restart=("poll", deadline), host_read=waits.host_read,
                      host_write=waits.host_write, what=what)


def do_poll(fds_ptr, nfds, timeout_ns):
    nfds = s32(nfds) if nfds < (1 << 32) else -1
    if nfds < 0 or nfds > NFDS_MAX:
        raise SysError(EINVAL)
    state, timed_out = sched.restart_state()
    raw = user_mem.read(fds_ptr, 8 * nfds) if nfds else b""
    files = current.thread.process.files
    out, count, waits = [], 0, _Waits()
    for i in range(nfds):
        fd, events, _ = struct.unpack_from("<ihh", raw, 8 * i)
        events &= 0xFFFF
        revents = 0
        if fd >= 0:
            try:
                file = files.get(fd)
            except SysError:
                revents = POLLNVAL
            else:
                ready, queue, host_fd = _readiness(file)
                revents = ready & (events | _ALWAYS)
                waits.add(queue, host_fd, events)
        if revents:
            count += 1
        out.append(struct.pack("<ihH", fd, events if events < 0x8000 else events - 0x10000, revents))
    if nfds:
        user_mem.write(fds_ptr, b"".join(out))
    deadline = _deadline_from(state, timeout_ns)
    timed_out = timed_out and state is not None and state[0] == "poll"
    if count or timed_out or timeout_ns == 0 or (deadline is not None and deadline <= time.monotonic_ns()):
        return count
    _block(waits, deadline, "poll")


def _timespec_ns(addr):
    if not addr:
        return None
    sec, nsec = user_mem.read_struct("<qq", addr)
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise SysError(EINVAL)
    return sec * 1_000_000_000 + nsec


def sys_poll(fds, nfds, timeout):
    timeout = s32(timeout)
    return do_poll(fds, nfds, None if timeout < 0 else timeout * 1_000_000)


def sys_ppoll(fds, nfds, tsp, sigmask, sigsetsize):
    # the signal mask would matter only with signal delivery, which does not exist yet
    return do_poll(fds, nfds, _timespec_ns(tsp))


def do_select(nfds, sets, timeout_ns):
    nfds = s32(nfds)
    if nfds < 0 or nfds > NFDS_MAX:
        raise SysError(EINVAL)
    state, timed_out = sched.restart_state()
    nbytes = (nfds + 63) // 64 * 8
    masks = [int.from_bytes(user_mem.read(ptr, nbytes), "little") if ptr and nbytes else 0 for ptr in sets]
    files = current.thread.process.files
    ready_masks, count, waits = [0, 0, 0], 0, _Waits()
    wanted = masks[0] | masks[1] | masks[2]
    for fd in range(nfds):
        if not wanted >> fd & 1:
            continue
        try:
            file = files.get(fd)
        except SysError:
            raise SysError(EBADF) from None
        ready, queue, host_fd = _readiness(file)
        if ready & POLLNVAL:
            raise SysError(EBADF)
        bit = 1 << fd
        events = (_IN if masks[0] & bit else 0) | (_OUT if masks[1] & bit else 0)
        waits.add(queue, host_fd, events)
        for i, hit in enumerate((ready & (_IN | POLLHUP | POLLERR), ready & (_OUT | POLLERR), ready & POLLPRI)):
            if masks[i] & bit and hit:
                ready_masks[i] |= bit
                count += 1
    deadline = _deadline_from(state, timeout_ns)
    timed_out = timed_out and state is not None and state[0] == "poll"
    if count or timed_out or timeout_ns == 0 or (deadline is not None and deadline <= time.monotonic_ns()):
        for ptr, mask in zip(sets, ready_masks):
            if ptr and nbytes:
                user_mem.write(ptr, mask.to_bytes(nbytes, "little"))
        return count
    _block(waits, deadline, "select")


def sys_select(nfds, readfds, writefds, exceptfds, timeout):
    timeout_ns = None
    if timeout:
        sec, usec = user_mem.read_struct("<qq", timeout)
        if sec < 0 or not 0 <= usec < 1_000_000:
            raise SysError(EINVAL)
        timeout_ns = sec * 1_000_000_000 + usec * 1000
    return do_select(nfds, (readfds, writefds, exceptfds), timeout_ns)


def sys_pselect6(nfds, readfds, writefds, exceptfds, tsp, sigmask):
    return do_select(nfds, (readfds, writefds, exceptfds), _timespec_ns(tsp))

