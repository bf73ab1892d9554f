"""A process's file descriptor table: descriptors to open file descriptions, each with
its close-on-exec flag (the one per-descriptor flag Linux has).

New descriptors take the lowest free number at or above a minimum, and fail with
EMFILE at the process's RLIMIT_NOFILE (the caller passes the limit: rlimits belong to
the process subsystem).
"""
from ..errno import EBADF, EMFILE, SysError


class FileTable:
    def __init__(self):
        self._files = {}            # fd -> OpenFile
        self._cloexec = set()

    def get(self, fd: int):
        try:
            return self._files[fd]
        except KeyError:
            raise SysError(EBADF) from None

    def __contains__(self, fd):
        return fd in self._files

    def __len__(self):
        return len(self._files)

    def items(self):
        return sorted(self._files.items())

    def put_check(self, limit: int) -> None:
        """EMFILE now if no descriptor is free below `limit` (open checks first, so
        that it never creates a file it cannot return)."""
        fd = 0
        while fd in self._files:
            fd += 1
        if fd >= limit:
            raise SysError(EMFILE)

    def put(self, file, *, cloexec=False, minimum=0, limit=1024) -> int:
        """Install `file` at the lowest free descriptor >= minimum."""
        fd = minimum
        while fd in self._files:
            fd += 1
        if fd >= limit:
            raise SysError(EMFILE)
        self._install(fd, file, cloexec)
        return fd

    def put_at(self, fd: int, file, *, cloexec=False, limit=1024) -> None:
        """Install `file` at `fd`, closing what was there (dup2)."""
        if fd < 0 or fd >= limit:
            raise SysError(EBADF)
        file.refs += 1         # before the old one goes: it may be the same description
        old = self._files.get(fd)
        self._files[fd] = file
        self._set(fd, cloexec)
        if old is not None:
            old.release()

    def _install(self, fd, file, cloexec):
        file.refs += 1
        self._files[fd] = file
        self._set(fd, cloexec)

    def _set(self, fd, cloexec):
        if cloexec:
            self._cloexec.add(fd)
        else:
            self._cloexec.discard(fd)

    def get_cloexec(self, fd: int) -> bool:
        self.get(fd)
        return fd in self._cloexec

    def set_cloexec(self, fd: int, value: bool) -> None:
        self.get(fd)
        self._set(fd, value)

    def close(self, fd: int) -> None:
        file = self._files.pop(fd, None)
        if file is None:
            raise SysError(EBADF)
        self._cloexec.discard(fd)
        file.release()

    def close_all(self) -> None:
        for fd in list(self._files):
            self.close(fd)

    def close_on_exec(self) -> None:
        """execve: the descriptors marked close-on-exec go."""
        for fd in sorted(self._cloexec):
            if fd in self._files:
                self.close(fd)

    def duplicate(self):
        """A copy for a new process (clone without CLONE_FILES): every descriptor,
        its close-on-exec flag included, sharing the open file descriptions."""
        child = FileTable()
        for fd, file in self._files.items():
            child._install(fd, file, fd in self._cloexec)
        return child

    def inherit(self):
        """The child's table at spawn: every descriptor not marked close-on-exec,
        sharing its open file description."""
        child = FileTable()
        for fd, file in self._files.items():
            if fd not in self._cloexec:
                child._install(fd, file, False)
        return child
