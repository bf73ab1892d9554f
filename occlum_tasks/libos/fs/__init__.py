"""Files: for now only a process's file table with the run's stdio (the VFS over the
SEFS image comes with the file system part). Other subsystems use `get_file`."""
from ..errno import EBADF, SysError
from ..process import current
from .file_table import FileTable, HostStdio  # noqa: F401


def get_file(fd: int):
    """The open file behind `fd` in the current process (EBADF otherwise)."""
    files = current.thread.process.files
    if files is None:
        raise SysError(EBADF)
    return files.get(fd)
