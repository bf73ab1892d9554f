"""The ipc subsystem's calls: pipe, pipe2, and the readiness waits (poll.py)."""
from .. import log
from ..errno import EINVAL, SysError
from ..fs.file import O_CLOEXEC, O_DIRECT, O_NONBLOCK
from ..process import current
from ..vm import user_mem


def sys_pipe2(fds_ptr, flags):
    from .. import fs
    flags &= 0xFFFFFFFF
    if flags & O_DIRECT:
        log.warn_once("pipe2 O_DIRECT", "pipe2(O_DIRECT): packet-mode pipes are not supported: EINVAL")
        raise SysError(EINVAL)
    if flags & ~(O_CLOEXEC | O_NONBLOCK):
        raise SysError(EINVAL)
    user_mem.view(fds_ptr, 8, writable=True)       # EFAULT before anything is created
    files = current.thread.process.files
    from .pipe import new_pipe
    read_end, write_end = new_pipe(bool(flags & O_NONBLOCK))
    cloexec, limit = bool(flags & O_CLOEXEC), fs.nofile_limit()
    rfd = files.put(read_end, cloexec=cloexec, limit=limit)
    try:
        wfd = files.put(write_end, cloexec=cloexec, limit=limit)
    except SysError:
        files.close(rfd)
        write_end.refs += 1
        write_end.release()
        raise
    user_mem.write_struct("<ii", fds_ptr, rfd, wfd)
    return 0


def sys_pipe(fds_ptr):
    return sys_pipe2(fds_ptr, 0)


# pipe.py and poll.py are imported at their first use (as process/syscalls.py does for
# clone & co.): a program that never calls them does not pay for compiling them
_lazy_sys_poll = None


def sys_poll(fds, nfds, timeout):
    global _lazy_sys_poll
    if _lazy_sys_poll is None:
        from .poll import sys_poll as _lazy_sys_poll
    return _lazy_sys_poll(fds, nfds, timeout)


_lazy_sys_ppoll = None


def sys_ppoll(fds, nfds, tsp, sigmask, sigsetsize):
    global _lazy_sys_ppoll
    if _lazy_sys_ppoll is None:
        from .poll import sys_ppoll as _lazy_sys_ppoll
    return _lazy_sys_ppoll(fds, nfds, tsp, sigmask, sigsetsize)


_lazy_sys_select = None


def sys_select(nfds, readfds, writefds, exceptfds, timeout):
    global _lazy_sys_select
    if _lazy_sys_select is None:
        from .poll import sys_select as _lazy_sys_select
    return _lazy_sys_select(nfds, readfds, writefds, exceptfds, timeout)


_lazy_sys_pselect6 = None


def sys_pselect6(nfds, readfds, writefds, exceptfds, tsp, sigmask):
    global _lazy_sys_pselect6
    if _lazy_sys_pselect6 is None:
        from .poll import sys_pselect6 as _lazy_sys_pselect6
    return _lazy_sys_pselect6(nfds, readfds, writefds, exceptfds, tsp, sigmask)


SYSCALLS = {"pipe": sys_pipe, "pipe2": sys_pipe2, "poll": sys_poll, "ppoll": sys_ppoll,
            "select": sys_select, "pselect6": sys_pselect6}
