"""The folder of a writable layer: every read and every change to it goes through Disk.

Keeping all changes in one place lets a test stop the process at any of them: set
OCCLUM_SEFS_CRASH_AFTER=N in the environment (or Disk.crash_after) and the process
exits with status CRASH_STATUS just before its Nth change to the folder, leaving
a random prefix of that write behind when the change is a write (a torn write), as
a kill at that instant could. The crash-safety tests of tests/test_writable.py use it.

Node files stay open in a small LRU of descriptors: a file's blocks are written in
batches, then synced once per commit.

Every call names a file relative to a descriptor of the folder, opened once without
following links (fsutil.open_dir), and never follows a link itself: the folder is
reachable by guests through a careless hostfs mount, and a link planted at
`.tmp-superblock` or at a node file's name must not make a commit write, read or
remove a host file elsewhere (the temporary is created with O_EXCL).
"""
import ctypes
import errno
import os
import random
import stat
from collections import OrderedDict

from .. import fsutil
from .format import BLOCK_SIZE, TMP_PREFIX

CRASH_ENV = "OCCLUM_SEFS_CRASH_AFTER"
CRASH_STATUS = 86
_OPEN_FILES = 64
_IOV_MAX = 1024
# Above this many files to sync, one syncfs(2) of the folder's file system is cheaper
# than an fsync (and a re-open) each.
_FSYNC_MAX = 16
try:
    _syncfs = ctypes.CDLL(None, use_errno=True).syncfs
except (OSError, AttributeError):        # not Linux, or a libc without it
    _syncfs = None


class Disk:
    def __init__(self, dir_fd, shown):
        """dir_fd: a descriptor of the folder (Disk owns it); shown: its name in errors."""
        self.dfd = dir_fd
        self.shown = shown
        self._fds = OrderedDict()            # node file name (str) -> fd
        self.changes = 0                     # changes made so far (writes, renames, ...)
        env = os.environ.get(CRASH_ENV)
        self.crash_after = int(env) if env else None

    # ---- the crash hook ----------------------------------------------------------------
    def _change(self, fd=None, data=None, offset=0):
        self.changes += 1
        if self.crash_after is not None and self.changes >= self.crash_after:
            if fd is not None and data is not None and len(data):
                # seeded by the crash point, so that a failing crash test can be replayed
                torn = random.Random(self.changes).randrange(len(data))
                if torn:
                    os.pwrite(fd, memoryview(data)[:torn], offset)
            os._exit(CRASH_STATUS)

    # ---- files -------------------------------------------------------------------------
    def _shown(self, name):
        return os.path.join(self.shown, name)

    def exists(self, name):
        try:
            os.stat(name, dir_fd=self.dfd, follow_symlinks=False)
            return True
        except FileNotFoundError:
            return False

    def names(self):
        return os.listdir(self.dfd)

    def fd(self, name, create=False):
        """A read-write descriptor of a node file; FileNotFoundError if it is missing."""
        fd = self._fds.get(name)
        if fd is not None:
            self._fds.move_to_end(name)
            return fd
        flags = os.O_RDWR | os.O_NONBLOCK
        if create:
            self._change()
            flags |= os.O_CREAT
        fd = fsutil.open_file(self.dfd, name, flags, 0o600, self._shown(name))
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(errno.EINVAL, "is not a regular file", self._shown(name))
        self._fds[name] = fd
        if len(self._fds) > _OPEN_FILES:
            _, old = self._fds.popitem(last=False)
            os.close(old)
        return fd

    def forget(self, name):
        fd = self._fds.pop(name, None)
        if fd is not None:
            os.close(fd)

    def size(self, name):
        return os.fstat(self.fd(name)).st_size

    def pread(self, name, length, offset):
        return os.pread(self.fd(name), length, offset)

    def preadv(self, name, view, offset):
        """Read into `view`; returns the bytes read (fewer only at the end of the file)."""
        fd, got = self.fd(name), 0
        while got < len(view):
            n = os.preadv(fd, [view[got:]], offset + got)
            if n == 0:
                break
            got += n
        return got

    def write_blocks(self, name, blocks):
        """Write [(location, 4096-byte buffer)], consecutive locations in one call."""
        fd = self.fd(name)
        blocks.sort(key=lambda b: b[0])
        i = 0
        while i < len(blocks):
            loc = blocks[i][0]
            run = [blocks[i][1]]
            i += 1
            while i < len(blocks) and blocks[i][0] == loc + len(run) and len(run) < _IOV_MAX:
                run.append(blocks[i][1])
                i += 1
            self._pwritev(fd, run, loc * BLOCK_SIZE)

    def _pwritev(self, fd, bufs, offset):
        if self.crash_after is not None:
            self._change(fd, b"".join(bufs), offset)
        else:
            self.changes += 1
        total = sum(len(b) for b in bufs)
        done = os.pwritev(fd, bufs, offset)
        if done != total:       # short write (a full disk reports ENOSPC on the retry)
            rest = b"".join(bufs)[done:]
            while rest:
                n = os.pwrite(fd, rest, offset + done)
                rest, done = rest[n:], done + n

    def truncate(self, name, size):
        self._change()
        os.ftruncate(self.fd(name), size)

    def fsync(self, name):
        os.fsync(self.fd(name))

    def sync_files(self, names):
        """Make the named files durable, and the folder (its new names) too."""
        if len(names) > _FSYNC_MAX and _syncfs is not None:
            if _syncfs(self.dfd) != 0:
                e = ctypes.get_errno()
                raise OSError(e, os.strerror(e), self.shown)
            return
        for name in sorted(names):
            self.fsync(name)
        self.fsync_dir()

    def fsync_dir(self):
        os.fsync(self.dfd)

    def unlink(self, name, missing_ok=True):
        self.forget(name)
        self._change()
        try:
            os.unlink(name, dir_fd=self.dfd)        # a link there is removed, not followed
        except FileNotFoundError:
            if not missing_ok:
                raise

    def replace_file(self, name, data):
        """Write a small file atomically: a temporary name, synced, renamed, folder synced."""
        tmp = TMP_PREFIX + name
        fd = fsutil.create_temporary(self.dfd, tmp, 0o600, self._shown(tmp))
        try:
            self._change(fd, data, 0)
            if os.pwrite(fd, data, 0) != len(data):
                raise OSError(errno.EIO, "short write", self._shown(tmp))
            os.fsync(fd)
        finally:
            os.close(fd)
        self._change()
        os.replace(tmp, name, src_dir_fd=self.dfd, dst_dir_fd=self.dfd)
        self.fsync_dir()

    def read_small(self, name, limit):
        return fsutil.read_small(self.dfd, name, limit, self._shown(name))

    def close(self):
        while self._fds:
            _, fd = self._fds.popitem()
            os.close(fd)
        if self.dfd is not None:
            os.close(self.dfd)
            self.dfd = None
