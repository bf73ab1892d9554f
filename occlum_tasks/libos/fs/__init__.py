"""Files (Occlum's fs subsystem): the VFS over the mount table, open files and the
descriptor table, the file system types, and their system calls (syscalls.py,
path_syscalls.py).

The enclave has one mount table (`boot`); each process has a descriptor table
(`process.files`, a FileTable) and an FsView (`process.fs`: cwd and umask). Other
subsystems use the functions here: `get_file` (mmap), `new_fs_view`, `stdio_table`
and `program_opener` (spawning a process).
"""
import os

from ..errno import EACCES, EBADF, EISDIR, SysError
from ..process import current
from ..process.task import RLIMIT_NOFILE
from .file import O_RDONLY, O_WRONLY, OpenFile
from .file_table import FileTable  # noqa: F401
from .mounts import MountSet, host_root, mount_from_config  # noqa: F401
from .path import Loc
from .stdio import HostStdioInode

_vfs = None
_mounts = None
_stderr_fd = 2
_reported = set()


def boot(mounts: MountSet, stderr_fd: int = 2) -> None:
    global _vfs, _mounts, _stderr_fd
    _mounts, _vfs, _stderr_fd = mounts, mounts.vfs(), stderr_fd
    _reported.clear()
    _PROGRAM_CACHE.clear()


def shutdown() -> None:
    """Commit what was written (the writable layers); the caller closes the mounts."""
    global _vfs, _mounts
    mounts, _mounts, _vfs = _mounts, None, None
    _PROGRAM_CACHE.clear()
    if mounts is not None:
        mounts.sync()


def current_vfs():
    return _vfs


def sync_all() -> None:
    if _mounts is not None:
        _mounts.sync()


def nofile_limit() -> int:
    """The current process's RLIMIT_NOFILE soft limit: its descriptors stay below it."""
    return current.thread.process.rlimits[RLIMIT_NOFILE][0]


def get_file(fd: int) -> OpenFile:
    """The open file behind `fd` in the current process (EBADF otherwise)."""
    files = current.thread.process.files
    if files is None:
        raise SysError(EBADF)
    return files.get(fd)


class FsView:
    """A process's view of the file system (Occlum's FsView): its working directory
    and its umask."""
    __slots__ = ("cwd", "umask")

    def __init__(self, cwd: Loc, umask: int = 0o022):
        self.cwd, self.umask = cwd, umask

    def clone(self):
        return FsView(self.cwd, self.umask)


def new_fs_view(cwd: str = "/") -> FsView:
    return FsView(_vfs.resolve(cwd, _vfs.root) if cwd != "/" else _vfs.root)


def clone_files(files):
    """The descriptor table of a new process made by clone (vfork, posix_spawn)."""
    return files.duplicate() if files is not None else None


def stdio_table(stdio=(0, 1, 2)) -> FileTable:
    """Descriptors 0, 1, 2 on the run's host descriptors."""
    table = FileTable()
    for index, host_fd in enumerate(stdio):
        inode = HostStdioInode(host_fd, index)
        file = OpenFile(Loc(("dev", ("stdin", "stdout", "stderr")[index]), inode),
                        inode.open(0), O_RDONLY if index == 0 else O_WRONLY)
        table.put(file, minimum=index)
    return table


# Programs read for spawn/execve, by inode and version: a posix_spawn loop would
# otherwise read (and for the image, decrypt and verify) the program and the musl
# loader (~0.8 MB) again each time, ~2.5 ms of a spawn. A file that changes gets a new
# size or mtime, hence a new key.
_PROGRAM_CACHE = {}
_PROGRAM_CACHE_ENTRIES = 8


def program_opener(view: FsView):
    """`open_file(path) -> bytes` for the loader: the program (and its interpreter)
    read through the VFS, relative paths from `view`'s cwd, links followed. Raises
    OSError with the errno (FileNotFoundError, IsADirectoryError...)."""
    vfs = _vfs

    def open_file(path: str) -> bytes:
        try:
            loc = vfs.resolve(path, view.cwd)
            meta = loc.inode.metadata()
            if meta.is_dir:
                raise SysError(EISDIR)
            if not meta.is_reg:
                raise SysError(EACCES)      # only regular files run
            key = (id(loc.inode.fs), meta.dev, meta.ino, meta.size, meta.mtime_ns, meta.ctime_ns)
            data = _PROGRAM_CACHE.get(key)
            if data is None:
                data = bytes(vfs.read_file(path, view.cwd))
                if len(_PROGRAM_CACHE) >= _PROGRAM_CACHE_ENTRIES:
                    _PROGRAM_CACHE.pop(next(iter(_PROGRAM_CACHE)))
                _PROGRAM_CACHE[key] = data
            return data
        except SysError as exc:
            raise OSError(exc.errno, os.strerror(exc.errno), path) from None

    return open_file


def report_integrity_error(message: str) -> None:
    """One line per failing block on the run's stderr, whatever the log level."""
    from .. import log
    log.error("%s", message)
    if message in _reported or log.level >= log.ERROR:
        return
    _reported.add(message)
    try:
        os.write(_stderr_fd, ("occlum-py: %s\n" % message).encode(errors="replace"))
    except OSError:
        pass
