"""The writable SEFS layer (run/mount/__ROOT) as the LibOS uses it: the upper layer of
the unionfs at `/`, or a sefs mounted on its own.

The layer itself (image/writable.py) stores, encrypts and commits; this adapter gives
the unionfs its errors in the guest's terms: an OSError becomes its errno, tampering
(IntegrityError) becomes EIO plus a line on the run's stderr. Files are read and
written by inode number, so an open file survives renames and unlinks
(open_ref/release keep an unlinked file until its last close).
"""
import os

from ...errors import IntegrityError
from ..errno import EINVAL, ENOENT, SysError
from .vfs import Metadata, integrity_failure, sys_error


def open_layer(folder, key: bytes, name: str, base=None):
    """Open (creating if needed) the writable layer in `folder`; raises IntegrityError
    for a layer that was tampered with or sealed with another key. base: the instance
    folder; no component of `folder` below it may be a symbolic link."""
    from ...image.writable import open_writable
    layer = WritableLayerFs(open_writable(folder, key, name=name, create=True, base=base))
    layer.folder = os.fspath(folder)
    return layer


def _meta(s) -> Metadata:
    return Metadata(s.ino, s.mode, s.size, s.nlink, uid=s.uid, gid=s.gid, atime_ns=s.atime_ns,
                    mtime_ns=s.mtime_ns, ctime_ns=s.ctime_ns, blocks=s.blocks)


class WritableLayerFs:
    read_only = False

    def __init__(self, layer):
        self.layer = layer
        self.name = getattr(layer, "name", "writable layer")
        self.folder = None           # the host folder it lives in (for statfs)

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except IntegrityError as exc:
            raise integrity_failure(exc) from None
        except OSError as exc:
            raise sys_error(exc) from None
        except ValueError:           # a closed layer, a bad name
            raise SysError(EINVAL) from None

    # ---- the namespace ------------------------------------------------------------------
    def lstat(self, x) -> Metadata:
        return _meta(self._call(self.layer.lstat, x))

    def lookup(self, path: str):
        """Metadata, or None when there is no entry (a whiteout is no entry)."""
        try:
            return _meta(self._call(self.layer.lstat, path))
        except SysError as exc:
            if exc.errno == ENOENT:
                return None
            raise

    def listdir(self, path):
        return self._call(self.layer.listdir, path)

    def mkdir(self, path, mode):
        return self._call(self.layer.mkdir, path, mode)

    def create(self, path, mode) -> int:
        return self._call(self.layer.create, path, mode)

    def symlink(self, target, path):
        return self._call(self.layer.symlink, target, path)

    def readlink(self, path) -> str:
        return self._call(self.layer.readlink, path)

    def link(self, existing, new):
        self._call(self.layer.link, existing, new)

    def unlink(self, path):
        self._call(self.layer.unlink, path)

    def rmdir(self, path):
        self._call(self.layer.rmdir, path)

    def rename(self, old, new):
        self._call(self.layer.rename, old, new)

    def chmod(self, path, mode):
        self._call(self.layer.chmod, path, mode)

    def utime(self, path, atime_ns, mtime_ns):
        self._call(self.layer.utime, path, atime_ns, mtime_ns)

    # ---- unionfs markers -------------------------------------------------------------------
    def whiteout(self, path):
        self._call(self.layer.whiteout, path)

    def is_whiteout(self, path) -> bool:
        return self._call(self.layer.is_whiteout, path)

    def list_whiteouts(self, path):
        return self._call(self.layer.list_whiteouts, path)

    def set_opaque(self, path, opaque=True):
        self._call(self.layer.set_opaque, path, opaque)

    def is_opaque(self, path) -> bool:
        return self._call(self.layer.is_opaque, path)

    # ---- data (x: a path or an inode number) --------------------------------------------------
    def read(self, x, offset, size) -> bytes:
        return self._call(self.layer.read, x, offset, size)

    def read_into(self, x, offset, buf) -> int:
        data = self._call(self.layer.read, x, offset, len(buf))
        n = len(data)
        buf[:n] = data
        return n

    def write(self, x, offset, data) -> int:
        return self._call(self.layer.write, x, offset, data)

    def truncate(self, x, size):
        self._call(self.layer.truncate, x, size)

    def open_ref(self, x) -> int:
        return self._call(self.layer.open_ref, x)

    def release(self, ino):
        self._call(self.layer.release, ino)

    def fsync(self, x=None):
        self._call(self.layer.fsync, x)

    def sync(self):
        self._call(self.layer.sync)

    def close(self):
        self.layer.close()
