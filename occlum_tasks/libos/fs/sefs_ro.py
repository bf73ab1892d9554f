"""The read-only SEFS image as a unionfs layer (Occlum's SEFS in integrity-only mode).

Reads go through the image reader (image/reader.py), which checks every block it
hands out against the Merkle tree whose root MAC the launch verified; a block that
fails is an IntegrityError, which the guest sees as EIO (and the run's stderr names
the block). The image never changes while the enclave runs, so what is known of a
path (its metadata) is kept.
"""
from ...errors import IntegrityError
from ..errno import EINVAL, ENOENT, SysError
from .vfs import Metadata, integrity_failure, sys_error


class ImageLayer:
    read_only = True

    def __init__(self, image):
        self.image = image
        self._meta = {}           # path -> Metadata or None (no such entry)

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except IntegrityError as exc:
            raise integrity_failure(exc) from None
        except (FileNotFoundError, NotADirectoryError):
            raise SysError(ENOENT) from None
        except OSError as exc:
            raise sys_error(exc) from None
        except ValueError:
            raise SysError(EINVAL) from None

    def lstat(self, path: str):
        """The entry's Metadata, or None when the image has no such entry."""
        try:
            return self._meta[path]
        except KeyError:
            pass
        try:
            s = self._call(self.image.stat, path)
        except SysError as exc:
            if exc.errno != ENOENT:
                raise
            meta = None
        else:
            # the image keeps one time; atime and ctime show it too
            meta = Metadata(s.ino, s.mode, s.size, s.nlink, uid=s.uid, gid=s.gid,
                            atime_ns=s.mtime_ns, mtime_ns=s.mtime_ns, ctime_ns=s.mtime_ns)
        self._meta[path] = meta
        return meta

    def listdir(self, path: str):
        return self._call(self.image.listdir, path)

    def readlink(self, path: str) -> str:
        return self._call(self.image.readlink, path)

    def read(self, path: str, offset: int, size: int) -> bytes:
        return self._call(self.image.read, path, offset, size)

    def read_into(self, path: str, offset: int, buf) -> int:
        data = self._call(self.image.read, path, offset, len(buf))
        n = len(data)
        buf[:n] = data
        return n
