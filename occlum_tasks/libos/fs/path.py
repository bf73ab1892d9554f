"""Path resolution over the mount table (Linux's namei, Occlum's FsView lookup).

A location is a `Loc`: the canonical names from `/` (no `.`, `..` or links) and the
inode there. `..` goes to the canonical parent, which is looked up again from `/`: a
location carries no chain of parents that a rename could leave stale, and `..` can
never leave the root nor climb out of a mounted file system except into the folder it
is mounted on, whatever the file system below says. Symbolic links are read and
followed here, never by a file system (hostfs relies on that for its confinement):
at most 40 of them per resolution (ELOOP), absolute targets restart at `/`.
"""
from ..errno import ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR, SysError
from .vfs import NAME_MAX, S_IFDIR, S_IFLNK, S_IFMT

MAX_SYMLINKS = 40
PATH_MAX = 4096


class Loc:
    __slots__ = ("names", "inode")

    def __init__(self, names: tuple, inode):
        self.names, self.inode = names, inode

    @property
    def path(self) -> str:
        return "/" + "/".join(self.names)

    def __repr__(self):
        return "Loc(%s)" % self.path


def split_target(target: str) -> tuple:
    return tuple(c for c in target.split("/") if c)


class Vfs:
    """The mount table and lookups in it. `mounts`: {target path: FileSystem}."""

    def __init__(self, mounts):
        if "/" not in mounts:
            raise ValueError("nothing is mounted at /")
        self.mounts = {split_target(target): fs for target, fs in mounts.items()}
        self.root = Loc((), self.mounts[()].root())

    # ---- single steps ---------------------------------------------------------------
    def child(self, loc: Loc, name: str) -> Loc:
        """`name` in the directory at `loc`, without following it; a mount point gives
        the root of what is mounted there."""
        names = loc.names + (name,)
        fs = self.mounts.get(names)
        if fs is not None:
            return Loc(names, fs.root())
        return Loc(names, loc.inode.lookup(name))

    def canonical(self, names: tuple) -> Loc:
        """The location of canonical `names` (links in them are not followed)."""
        loc = self.root
        for name in names:
            loc = self.child(loc, name)
        return loc

    def parent(self, loc: Loc) -> Loc:
        return self.canonical(loc.names[:-1]) if loc.names else self.root

    def mounts_under(self, names: tuple):
        """Names of the mount points directly inside the directory `names`."""
        depth = len(names) + 1
        return [m[-1] for m in self.mounts if len(m) == depth and m[:-1] == names]

    def is_mount_point(self, names: tuple) -> bool:
        return names in self.mounts

    def make_mount_points(self):
        """Make the missing folders that lead to mount points (/mnt for /mnt/data), as
        Occlum does at boot; returns a message per mount point that could not be
        reached. (The mount point itself needs no folder: lookups cross it first.)"""
        problems = []
        for names in sorted(self.mounts, key=len):
            loc = self.root
            try:
                for name in names[:-1]:
                    try:
                        loc = self.child(loc, name)
                    except SysError as exc:
                        if exc.errno != ENOENT:
                            raise
                        loc.inode.mkdir(name, S_IFDIR | 0o755)
                        loc = self.child(loc, name)
            except SysError as exc:
                problems.append("cannot reach the mount point /%s: %s" % ("/".join(names), exc))
        return problems

    # ---- whole paths -------------------------------------------------------------------
    def resolve(self, path: str, start: Loc, follow: bool = True) -> Loc:
        """The location `path` names, relative paths from `start`. The last component
        is followed when it is a link if `follow` (or the path ends with '/')."""
        if not path:
            raise SysError(ENOENT)
        if len(path) >= PATH_MAX:
            raise SysError(ENAMETOOLONG)
        trailing = path.endswith("/")
        follow = follow or trailing
        loc = self.root if path[0] == "/" else start
        todo = [c for c in path.split("/") if c]
        todo.reverse()
        links = 0
        while todo:
            comp = todo.pop()
            if comp == ".":
                _need_dir(loc)
                continue
            if comp == "..":
                _need_dir(loc)
                loc = self.parent(loc)
                continue
            if len(comp) > NAME_MAX:
                raise SysError(ENAMETOOLONG)
            _need_dir(loc)
            child = self.child(loc, comp)
            if (todo or follow) and child.inode.mode() & S_IFMT == S_IFLNK:
                links += 1
                if links > MAX_SYMLINKS:
                    raise SysError(ELOOP)
                magic = child.inode.magic_target()
                if magic is not None:
                    loc = Loc(*magic)
                    continue
                target = child.inode.readlink()
                if not target:
                    raise SysError(ENOENT)
                if target[0] == "/":
                    loc = self.root
                more = [c for c in target.split("/") if c]
                more.reverse()
                todo.extend(more)
                continue
            loc = child
        if trailing:
            _need_dir(loc)
        return loc

    def resolve_parent(self, path: str, start: Loc):
        """(directory location, last name, ends with '/') for calls that create or
        remove `path`'s last component; the name is None for '/' itself."""
        if not path:
            raise SysError(ENOENT)
        if len(path) >= PATH_MAX:
            raise SysError(ENAMETOOLONG)
        stripped = path.rstrip("/")
        if not stripped:
            return self.root, None, True
        head, _, name = stripped.rpartition("/")
        if len(name) > NAME_MAX:
            raise SysError(ENAMETOOLONG)
        if not head:
            parent = self.root if stripped[0] == "/" else start
        else:
            parent = self.resolve(head, start)
        _need_dir(parent)
        return parent, name, len(stripped) != len(path)

    # ---- conveniences (the loader, tests) -----------------------------------------------
    def read_file(self, path: str, start: Loc = None) -> bytes:
        """All bytes of the file `path` (links followed); SysError on failure."""
        from .file import open_handle
        loc = self.resolve(path, start or self.root)
        handle = open_handle(loc.inode, 0)
        try:
            return handle.mmap_data()
        finally:
            handle.release()


def _need_dir(loc: Loc) -> None:
    if loc.inode.mode() & S_IFMT != S_IFDIR:
        raise SysError(ENOTDIR)
