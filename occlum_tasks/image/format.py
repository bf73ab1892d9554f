"""SEFS on-disk layouts: every record as a table of (field, offset, struct code).

docs/formats.md ("## SEFS") is the specification; this module is its machine-readable
half. Both the writer and the reader take offsets and sizes from here, so the two cannot
drift apart. All integers are little-endian.

An image is a folder holding one `superblock` file and one node file per file,
directory or symbolic link. A node file is a sequence of 4 KiB blocks: block 0 is the
node header (the inode), the others are data blocks and index blocks. Every block is
sealed (hashed, or encrypted with AES-128-GCM) together with its position, and its tag
is kept by its parent: data and index blocks by an index entry, a node header by the
directory entry that names it, the root directory by the superblock, the superblock by
the root MAC that the build puts into the enclave's configuration.
"""
import stat as _stat
import struct

BLOCK_SIZE = 4096
MAC_SIZE = 16          # every tag, hash-based or AES-GCM, is 16 bytes
KEY_SIZE = 16          # AES-128
NONCE_SIZE = 12        # AES-GCM's 96-bit nonce
NODE_ID_SIZE = 16
FORMAT_VERSION = 1

SUPERBLOCK_FILE = "superblock"
NODE_NAME_HEX = 2 * MAC_SIZE       # node file names: 32 lowercase hex digits
TMP_PREFIX = ".tmp-"               # files being written; never part of an image

SUPERBLOCK_MAGIC = b"SEFSROOT"
NODE_MAGIC = b"SEFSNODE"

# Image-wide flags (superblock) repeated in every node header.
FLAG_ENCRYPTED = 0x1   # blocks are AES-128-GCM ciphertext; tags are GCM tags
FLAG_WRITABLE = 0x2    # the writable layer (run/mount/__ROOT), docs/formats.md section 9
KNOWN_FLAGS = FLAG_ENCRYPTED | FLAG_WRITABLE

# Block kinds. The kind is part of every block's position, so that a header can never
# pass for a data block or an index block and the other way round.
KIND_SUPERBLOCK = 1
KIND_HEADER = 2
KIND_INDEX = 3
KIND_DATA = 4


class Layout:
    """A fixed-size record described by a table of (name, offset, struct code).

    The table is compiled into one struct.Struct (gaps become pad bytes, which pack as
    zeros), so packing and unpacking cost one call each. Offsets are checked at import
    time: a table whose fields overlap or overrun the record is a bug, caught early.
    """

    def __init__(self, name, size, fields):
        self.name = name
        self.size = size
        self.fields = tuple(fields)
        fmt, pos = "<", 0
        for fname, offset, code in self.fields:
            if offset < pos:
                raise ValueError(f"{name}.{fname}: offset {offset} overlaps the field before")
            if offset > pos:
                fmt += f"{offset - pos}x"
            fmt += code
            pos = offset + struct.calcsize("<" + code)
        if pos > size:
            raise ValueError(f"{name}: fields end at {pos}, beyond the record size {size}")
        if pos < size:
            fmt += f"{size - pos}x"
        self.struct = struct.Struct(fmt)
        assert self.struct.size == size, (name, self.struct.size, size)
        self.names = tuple(f[0] for f in self.fields)
        self.offsets = {f[0]: f[1] for f in self.fields}
        # bytes fields default to b"" (packed as zeros), numbers to 0
        self._defaults = tuple(b"" if code.endswith("s") else 0 for _, _, code in self.fields)

    def pack(self, **values):
        unknown = set(values) - set(self.names)
        if unknown:
            raise KeyError(f"{self.name}: no field {sorted(unknown)}")
        return self.struct.pack(*(values.get(n, d) for n, d in zip(self.names, self._defaults)))

    def unpack(self, buf, offset=0):
        return dict(zip(self.names, self.struct.unpack_from(buf, offset)))


# The superblock file: the root pointer, written last. Bytes 0-47 are authenticated but
# not encrypted (a reader needs them to find the keys); `root` is sealed; `root_mac` is
# the seal's tag, which is the image's root MAC (.ROOT_MAC, the config).
SUPERBLOCK = Layout("superblock", 144, [
    ("magic",      0,   "8s"),   # b"SEFSROOT"
    ("version",    8,   "H"),    # FORMAT_VERSION
    ("flags",      10,  "H"),    # FLAG_*
    ("block_size", 12,  "I"),    # 4096
    ("generation", 16,  "Q"),    # 0 in an image; the writable layer counts commits
    ("key_check",  24,  "8s"),   # tells a wrong key from tampering; zero if not encrypted
    ("salt",       32,  "16s"),  # picks the superblock's sealing key; zero if not encrypted
    ("root",       48,  "80s"),  # NODE_REF of the root directory, sealed
    ("root_mac",   128, "16s"),  # tag over position + bytes 0-47 + root
])
SUPERBLOCK_AAD_END = SUPERBLOCK.offsets["root"]

# A reference from a parent to a child node: enough to find, decrypt and check it.
NODE_REF = Layout("node ref", 80, [
    ("node_name", 0,  "16s"),    # node file name = these 16 bytes as lowercase hex
    ("node_id",   16, "16s"),    # bound into the position of each of the node's blocks
    ("mac",       32, "16s"),    # tag of the node's header block
    ("key",       48, "16s"),    # the node's AES-128 key; zero if not encrypted
    ("nonce",     64, "12s"),    # nonce of the header block; zero if not encrypted
    ("mode",      76, "I"),      # st_mode; must equal the header's (lets listdir type names)
])

# One directory entry: DIRENT_HEAD, a NODE_REF, the name, zero padding to 8 bytes.
# Entries are sorted by name (bytewise) and fill the directory's data from offset 0;
# they may cross block boundaries (a directory's data is always read whole).
DIRENT_HEAD = Layout("dirent head", 8, [
    ("rec_len",  0, "H"),        # whole record, a multiple of 8
    ("name_len", 2, "H"),        # 1-255
    ("reserved", 4, "I"),        # zero
])
DIRENT_FIXED = DIRENT_HEAD.size + NODE_REF.size   # 88; the name starts here
NAME_MAX = 255

# The node header: block 0 of every node file. Its first 1024 bytes are the inode; the
# rest holds HEADER_ENTRIES top-level entries of the node's block tree.
NODE_HEADER = Layout("node header", 1024, [
    ("magic",        0,   "8s"),   # b"SEFSNODE"
    ("version",      8,   "H"),    # FORMAT_VERSION
    ("flags",        10,  "H"),    # the image's flags
    ("mode",         12,  "I"),    # st_mode: type bits and permission bits (07777)
    ("node_id",      16,  "16s"),  # equals the parent's NODE_REF.node_id
    ("size",         32,  "Q"),    # bytes of data (file content, dirents, link target)
    ("nblocks",      40,  "Q"),    # data blocks = ceil(size / 4096)
    ("nlink",        48,  "I"),    # 1; a directory: 2 + its subdirectories
    ("uid",          52,  "I"),    # 0 in an image
    ("gid",          56,  "I"),    # 0 in an image
    ("depth",        60,  "I"),    # levels of index blocks below the header
    ("top_count",    64,  "I"),    # entries used in the header's table
    ("total_blocks", 68,  "I"),    # blocks in the node file (its size / 4096)
    ("generation",   72,  "Q"),    # 0 in an image; the writable layer counts rewrites
    ("atime_ns",     80,  "q"),    # 0 in an image
    ("mtime_ns",     88,  "q"),    # 0 in an image
    ("ctime_ns",     96,  "q"),    # 0 in an image
    ("node_flags",   104, "I"),    # 0 in an image; writable layer: NODE_OPAQUE
    # 108-1023 reserved, zero
])
HEADER_ENTRIES_OFFSET = NODE_HEADER.size

# One entry of the block tree: where a child block is and how to check it.
ENTRY = Layout("entry", 32, [
    ("nonce",    0,  "12s"),       # AES-GCM nonce of the child block; zero if not encrypted
    ("location", 12, "I"),         # block number in the node file (never 0: the header)
    ("mac",      16, "16s"),       # tag of the child block
])
ENTRY_SIZE = ENTRY.size
ENTRIES_PER_INDEX = BLOCK_SIZE // ENTRY_SIZE                                  # 128
HEADER_ENTRIES = (BLOCK_SIZE - HEADER_ENTRIES_OFFSET) // ENTRY_SIZE           # 96

# The position of a block: never stored, always recomputed by the reader and bound into
# the tag (hashed in front of the block, or passed to AES-GCM as associated data). It
# is what stops blocks from being swapped between nodes, levels or places.
POSITION = Layout("position", 32, [
    ("node_id", 0,  "16s"),        # zero for the superblock
    ("kind",    16, "I"),          # KIND_*
    ("level",   20, "I"),          # 0 for data blocks and headers; 1.. for index blocks
    ("index",   24, "Q"),          # block number within its level
])

# Nonces of an encrypted image are the block's place within its node; each node has its
# own key, derived from its content (keys.file_key), so a (key, nonce) pair always
# seals the same plaintext. The writable layer draws fresh random nonces instead.
IMAGE_NONCE = Layout("image nonce", 12, [
    ("kind",  0, "H"),
    ("level", 2, "H"),
    ("index", 4, "Q"),
])

ZERO_NONCE = bytes(NONCE_SIZE)
ZERO_KEY = bytes(KEY_SIZE)
ZERO_NODE_ID = bytes(NODE_ID_SIZE)

# Precompiled packers for the hot loops.
POSITION_PACK = POSITION.struct.pack
ENTRY_PACK = ENTRY.struct.pack
ENTRY_UNPACK_FROM = ENTRY.struct.unpack_from
IMAGE_NONCE_PACK = IMAGE_NONCE.struct.pack


def position(node_id, kind, level=0, index=0):
    return POSITION_PACK(node_id, kind, level, index)


def image_nonce(kind, level=0, index=0):
    return IMAGE_NONCE_PACK(kind, level, index)


# ---- geometry of a node's block tree --------------------------------------------------

def blocks_for(size):
    """Data blocks needed for `size` bytes."""
    return -(-size // BLOCK_SIZE)


def tree_depth(nblocks):
    """The fewest index levels that let the header's table cover `nblocks` data blocks."""
    depth, count = 0, nblocks
    while count > HEADER_ENTRIES:
        count = -(-count // ENTRIES_PER_INDEX)
        depth += 1
    return depth


def level_counts(nblocks):
    """Blocks at each level: [data blocks, level-1 index blocks, ..., level-depth]."""
    counts = [nblocks]
    for _ in range(tree_depth(nblocks)):
        counts.append(-(-counts[-1] // ENTRIES_PER_INDEX))
    return counts


def image_total_blocks(nblocks):
    """Blocks in a node file as an image writer lays it out: header, data, index."""
    return 1 + sum(level_counts(nblocks))


# ---- directory entries ----------------------------------------------------------------

def pack_dirent(name, ref_bytes):
    """One directory record: DIRENT_HEAD, the 80-byte NODE_REF, the name, padding."""
    rec_len = (DIRENT_FIXED + len(name) + 7) & ~7
    head = DIRENT_HEAD.struct.pack(rec_len, len(name), 0)
    return head + ref_bytes + name + bytes(rec_len - DIRENT_FIXED - len(name))


def parse_dirents(data):
    """[(name bytes, NODE_REF dict)] from a directory's data; ValueError if malformed."""
    out, pos, prev = [], 0, None
    while pos < len(data):
        if len(data) - pos < DIRENT_FIXED:
            raise ValueError(f"record at offset {pos} is cut short")
        rec_len, name_len, reserved = DIRENT_HEAD.struct.unpack_from(data, pos)
        end = pos + DIRENT_FIXED + name_len
        if (rec_len % 8 or rec_len != (DIRENT_FIXED + name_len + 7) & ~7
                or pos + rec_len > len(data) or reserved):
            raise ValueError(f"record at offset {pos} has a bad length")
        name = bytes(data[pos + DIRENT_FIXED:end])
        if (not name or len(name) > NAME_MAX or b"/" in name or b"\0" in name
                or name in (b".", b"..")):
            raise ValueError(f"record at offset {pos} has an invalid name {name!r}")
        if prev is not None and name <= prev:
            raise ValueError(f"names are not sorted or not unique at {name!r}")
        if any(data[end:pos + rec_len]):
            raise ValueError(f"record at offset {pos} has non-zero padding")
        out.append((name, NODE_REF.unpack(data, pos + DIRENT_HEAD.size)))
        prev, pos = name, pos + rec_len
    return out


def kind_name(mode):
    """How error messages call a node of this mode."""
    if _stat.S_ISDIR(mode):
        return "directory"
    if _stat.S_ISLNK(mode):
        return "symlink"
    return "file"
