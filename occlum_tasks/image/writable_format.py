"""The records that only the writable layer (run/mount/__ROOT) has: docs/formats.md, section 9.

The writable layer is SEFS with FLAG_ENCRYPTED | FLAG_WRITABLE: the same superblock, node
files, node headers, entries, positions and AES-128-GCM seals as an encrypted image
(format.py). What differs is how nodes are found. An image's directory entry holds its
child's whole reference (tag, key, nonce), so changing a file means re-sealing every
directory up to the root. Here the references live in one place, the **inode table**
(a node whose data is an array of INODE records, indexed by inode number), and
directory entries name a child by inode number only. Changing a file then touches its
own node, one block of the table and the superblock, whatever its depth; hard links
are two directory entries with one inode number; and a file keeps its inode number
(what an open file descriptor holds) through renames.
"""
import errno
import stat as st_mod

from .format import (
    BLOCK_SIZE, FLAG_ENCRYPTED, FLAG_WRITABLE, NAME_MAX, Layout, pack_dirent, parse_dirents,
)

WRITABLE_FLAGS = FLAG_ENCRYPTED | FLAG_WRITABLE

# Locations 0 and 1 of every node file are its two header slots. A commit writes a
# node's new header into the slot that the last commit did not use, so the committed
# header is never overwritten (copy on write, down to the header). The slot in use is
# in the node's INODE record; the inode table's own slot is the superblock's
# generation modulo 2 (every commit rewrites the table).
HEADER_SLOTS = 2
FIRST_DATA_LOCATION = 2
# An entry with location 0 is a hole: a block never written (or all zeros). It reads as
# zeros and has no tag. Location 0 is a header slot, so no real block can have it.
HOLE_LOCATION = 0

# One inode of the layer: the first 80 bytes are a NODE_REF (format.py), so the node is
# found, opened and checked exactly as an image's child is; then the header slot.
INODE = Layout("inode record", 128, [
    ("node_name", 0,  "16s"),     # node file name (32 hex digits) = node_id here
    ("node_id",   16, "16s"),     # random; bound into the position of every block
    ("mac",       32, "16s"),     # tag of the committed header
    ("key",       48, "16s"),     # the node's AES-128 key
    ("nonce",     64, "12s"),     # nonce of the committed header
    ("mode",      76, "I"),       # st_mode; equals the header's. 0: a free inode number
    ("slot",      80, "I"),       # header slot of the committed header: 0 or 1
    # 84-127 reserved, zero
])
INODE_SIZE = INODE.size
INODES_PER_BLOCK = BLOCK_SIZE // INODE_SIZE       # 32
ROOT_INO = 1                                      # inode 0 is never used
TABLE_MODE = st_mod.S_IFREG                       # the inode table's mode (no permission bits)

# The 80-byte reference part of a writable directory record (DIRENT_HEAD, this, name):
# laid over NODE_REF so that node_id and mode sit at the same offsets.
DIR_REF = Layout("writable dirent ref", 80, [
    ("ino",     0,  "Q"),         # inode number; 0 for a whiteout
    ("node_id", 16, "16s"),       # the child's node_id: must equal its INODE record's
    ("mode",    76, "I"),         # file type bits only (S_IFMT), like d_type
])
# A whiteout (unionfs: this name hides the lower layer's entry) is a record with inode 0,
# a zero node id and the type of a character device, as overlayfs spells it on disk.
WHITEOUT_TYPE = st_mod.S_IFCHR

# Header node_flags of the writable layer.
NODE_OPAQUE = 0x1                 # a directory that hides the lower layer's directory
KNOWN_NODE_FLAGS = NODE_OPAQUE

# Rewriting blocks with random 96-bit nonces is safe for up to 2^32 seals under one key
# (NIST SP 800-38D); a node is re-keyed (every block sealed again under a new key) once
# its header's generation, which counts seals under its key, passes this.
REKEY_AFTER = 1 << 31


def pack_dir(entries, node_id_of):
    """A directory's data from {name bytes: (ino, type)}; node_id_of(ino) -> 16 bytes."""
    parts = []
    for name in sorted(entries):
        ino, ftype = entries[name]
        nid = node_id_of(ino) if ino else bytes(16)
        parts.append(pack_dirent(name, DIR_REF.pack(ino=ino, node_id=nid, mode=ftype)))
    return b"".join(parts)


def parse_dir(data):
    """{name: (ino, type, node_id)} from a directory's data; ValueError if malformed."""
    out = {}
    for name, ref in parse_dirents(data):
        # parse_dirents reads the reference as a NODE_REF; node_id and mode are at the
        # same offsets, and the inode number is the first 8 bytes of "node_name"
        ino = int.from_bytes(ref["node_name"][:8], "little")
        ftype = ref["mode"]
        if any(ref["node_name"][8:] + ref["mac"] + ref["key"] + ref["nonce"]):
            raise ValueError(f"record {name!r} has non-zero reserved bytes")
        if ftype & ~0o170000:
            raise ValueError(f"record {name!r} has permission bits in its type")
        if (ino == 0) != (ftype == WHITEOUT_TYPE):
            raise ValueError(f"record {name!r} has inode {ino} and type {ftype:o}")
        out[name] = (ino, ftype, ref["node_id"])
    return out


def check_name(name):
    """A directory entry name as bytes, or OSError (EINVAL, ENAMETOOLONG)."""
    if not name or name in (b".", b"..") or b"/" in name or b"\0" in name:
        raise OSError(errno.EINVAL, "Invalid argument", name)
    if len(name) > NAME_MAX:
        raise OSError(errno.ENAMETOOLONG, "File name too long", name)
    return name

