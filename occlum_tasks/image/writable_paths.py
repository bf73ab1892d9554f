"""Paths and directory entries of the writable layer: the part of WritableLayer
(writable.py) that turns absolute paths into nodes and keeps link counts right.

A directory's entries are read, checked against the inode table, and kept in memory as
{name bytes: (inode number, file type)}; a whiteout is (0, S_IFCHR). Lookups skip
whiteouts, so for this layer's own operations a whiteout is simply an absent name.
"""
import errno
import os
import stat as st_mod

from ..errors import IntegrityError
from .writable_format import ROOT_INO, check_name, parse_dir


def _err(code, path=None):
    return OSError(code, os.strerror(code), os.fsdecode(path) if isinstance(path, bytes) else path)


class Namespace:
    """Mixed into WritableLayer; needs self._store (a Store) and self._searching."""

    # ---- paths ---------------------------------------------------------------------------------
    @staticmethod
    def _split(path):
        p = os.fsencode(path)
        if not p.startswith(b"/"):
            raise _err(errno.EINVAL, p)
        parts = [c for c in p.split(b"/") if c and c != b"."]
        for c in parts:
            check_name(c)
        return parts

    def _entries(self, node):
        """A directory's {name: (ino, type)}, read and checked on first use."""
        if node.entries is None:
            s = self._store
            try:
                parsed = parse_dir(s.read_content(node))
            except ValueError as e:
                s.malformed(node, str(e))
            entries = {}
            for name, (ino, ftype, nid) in parsed.items():
                if ino:
                    rec = s.record(ino)
                    if rec is None or rec["node_id"] != nid or st_mod.S_IFMT(rec["mode"]) != ftype:
                        s.malformed(node, f"entry {name!r} does not match inode {ino}")
                entries[name] = (ino, ftype)
            node.entries = entries
        return node.entries

    def _lookup(self, d, name):
        e = self._entries(d).get(name)
        return e[0] if e and e[0] else None

    def _walk(self, parts, path):
        s = self._store
        node = s.node(ROOT_INO)
        for name in parts:
            if not st_mod.S_ISDIR(node.mode):
                raise _err(errno.ENOTDIR, path)
            ino = self._lookup(node, name)
            if ino is None:
                raise _err(errno.ENOENT, path)
            node = s.node(ino)
        return node

    def _node(self, x):
        """The node a path or an inode number (an open file) names."""
        if isinstance(x, int):
            node = self._store.nodes.get(x)
            return node if node is not None else self._store.node(x)
        node = self._walk(self._split(x), x)
        if os.fsencode(x).endswith(b"/") and not st_mod.S_ISDIR(node.mode):
            raise _err(errno.ENOTDIR, x)
        return node

    def _parent(self, path):
        """(parent directory node, name) of a path that is not '/'."""
        parts = self._split(path)
        if not parts:
            raise _err(errno.EBUSY, path)
        d = self._walk(parts[:-1], path)
        if not st_mod.S_ISDIR(d.mode):
            raise _err(errno.ENOTDIR, path)
        return d, parts[-1]

    def _path_of(self, ino):
        """A path of `ino` (for messages), or None. Directories not read yet are read;
        one that fails its own check is skipped (it is not what the message is about)."""
        if ino == ROOT_INO:
            return b"/"
        if self._searching:                 # a directory failed while searching: no names
            return None
        s = self._store
        todo = [(b"", ROOT_INO)]
        self._searching = True
        try:
            while todo:
                prefix, dino = todo.pop(0)
                try:
                    entries = self._entries(s.node(dino))
                except (IntegrityError, OSError):
                    continue
                for name, (child, ftype) in entries.items():
                    if child == ino:
                        return prefix + b"/" + name
                    if ftype == st_mod.S_IFDIR:
                        todo.append((prefix + b"/" + name, child))
        finally:
            self._searching = False
        return None

    # ---- entries ------------------------------------------------------------------------------
    def _set_entry(self, d, name, node, now):
        self._store.touch(d)
        self._entries(d)[name] = (node.ino, st_mod.S_IFMT(node.mode))
        d.mtime_ns = d.ctime_ns = now

    def _del_entry(self, d, name, now):
        self._store.touch(d)
        del self._entries(d)[name]
        d.mtime_ns = d.ctime_ns = now

    def _free_name(self, d, name, path):
        if self._lookup(d, name) is not None:
            raise _err(errno.EEXIST, path)

    def _drop_link(self, node, now):
        """One name of `node` is gone (unlink, rmdir, replaced by rename)."""
        node.ctime_ns = now
        if st_mod.S_ISDIR(node.mode):
            node.nlink = 0
        else:
            node.nlink -= 1
        if node.nlink == 0:
            self._store.unlinked(node)
        else:
            self._store.touch(node)

    def _has_entries(self, d):
        return any(ino for ino, _ in self._entries(d).values())

    def _new(self, path, mode, what=None):
        d, name = self._parent(path)
        self._free_name(d, name, path)
        node = self._store.new_node(mode)
        now = node.ctime_ns
        if st_mod.S_ISDIR(mode):
            node.nlink, node.entries, node.content = 2, {}, b""
            d.nlink += 1
        elif st_mod.S_ISLNK(mode):
            node.target = what
            node.size = len(what)
        self._set_entry(d, name, node, now)
        return node

