"""SEFS: the image writer, the verifying reader and the key helpers (docs/formats.md)."""
import os
import random
import re
import shutil
import socket
import stat
from pathlib import Path

import pytest

from occlum_tasks.errors import IntegrityError, OcclumError
from occlum_tasks.image import format as F
from occlum_tasks.image.keys import format_mac, generate_image_key, parse_image_key, parse_mac
from occlum_tasks.image.reader import open_image
from occlum_tasks.image.writer import build_image

IMG = "build/mount/__ROOT"
KEY = bytes(range(16))
MODES = [pytest.param(None, id="integrity"), pytest.param(KEY, id="encrypted")]
SIZES = [0, 1, 4095, 4096, 4097, 96 * 4096, 96 * 4096 + 1, 1 << 20]


def data(seed, n):
    return random.Random(seed).randbytes(n)


def make_tree(root, seed=0):
    """A tree with every case the format must carry."""
    (root / "bin").mkdir(parents=True)
    for i, n in enumerate(SIZES):
        (root / "bin" / f"f{n}").write_bytes(data(seed * 100 + i, n))
    (root / "bin" / "f4097").chmod(0o4751)
    (root / "bin" / "f1").chmod(0o600)
    (root / "empty" / "deeper" / "deepest").mkdir(parents=True)
    (root / "empty").chmod(0o1777)
    (root / "lib" / "x86_64").mkdir(parents=True)
    (root / "lib" / "x86_64" / "libc.so").write_bytes(data(seed + 7, 5000))
    (root / "lib" / "x86_64").chmod(0o700)
    (root / "same1").write_bytes(b"identical content\n" * 300)
    (root / "same2").write_bytes(b"identical content\n" * 300)
    os.link(root / "same1", root / "hardlink")
    os.symlink("x86_64/libc.so", root / "lib" / "rel")
    os.symlink("/etc/passwd", root / "abs")
    os.symlink("does/not/exist", root / "dangling")
    os.symlink("lib", root / "dirlink")
    (root / "caf\u00e9 & sp ace").write_text("name with odd characters")
    (root / os.fsdecode(b"not-utf8-\xff")).write_bytes(b"names are bytes")
    (root / "new\nline").write_bytes(b"a name that would break a message line")
    # written a while ago: the writer reads files again whose mtime is too close to its
    # last build (a change within the same clock tick would not show)
    past = os.stat(root).st_mtime_ns - 10**10
    for p in [root, *root.rglob("*")]:
        os.utime(p, ns=(past, past), follow_symlinks=False)
    return root


def build(src, dest, key=None, **kw):
    return build_image(src, dest, key=key, **kw)


def open_(dest, stats, key=None):
    return open_image(dest, stats.root_mac, key=key, name=IMG)


def expected(src):
    """{image path: (lstat, content or link target)} for every entry of a source tree."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(src):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = "/" + p.relative_to(src).as_posix()
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = (st, os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                out[rel] = (st, p.read_bytes())
            else:
                out[rel] = (st, sorted(os.listdir(p)))
    return out


def node_state(dest):
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in Path(dest).iterdir()}


# ---- round trips ----------------------------------------------------------------------------

@pytest.mark.parametrize("key", MODES)
def test_round_trip(tmp_path, key):
    src = make_tree(tmp_path / "src")
    stats = build(src, tmp_path / "out", key)
    assert len(stats.root_mac) == 16
    assert stats.files_total == stats.files_encoded == len(SIZES) + 11
    img = open_(tmp_path / "out", stats, key)
    exp = expected(src)
    for path, (st, content) in exp.items():
        s = img.stat(path)
        assert s.mode == st.st_mode, path              # type bits and 07777, setuid and sticky included
        if isinstance(content, bytes):
            assert s.is_file and not s.is_dir and s.size == len(content)
            assert img.read(path) == content, path
        elif isinstance(content, str):
            assert s.is_symlink and img.readlink(path) == content
        else:
            assert s.is_dir and img.listdir(path) == content
    assert img.listdir("/") == sorted(os.listdir(src))
    assert img.stat("/").is_dir and img.stat("/empty/deeper/deepest").is_dir
    assert img.listdir("/empty/deeper/deepest") == []
    assert img.stat("/bin").nlink == 2 and img.stat("/empty").nlink == 3
    assert img.stat("/bin/f4097").mode & 0o7777 == 0o4751
    assert img.stat("/empty").mode & 0o7777 == 0o1777
    # the hard link became a file of its own
    assert img.stat("/hardlink").node != img.stat("/same1").node
    assert img.read("/hardlink") == img.read("/same1")
    report = img.verify_all()
    assert report.files == len(SIZES) + 7 and report.symlinks == 4 and report.dirs == 7
    assert set(report.nodes) | {F.SUPERBLOCK_FILE} == set(os.listdir(tmp_path / "out"))


@pytest.mark.parametrize("key", MODES)
def test_partial_reads(tmp_path, key):
    src = tmp_path / "src"
    src.mkdir()
    content = data(1, (1 << 20) + 123)
    (src / "big").write_bytes(content)
    stats = build(src, tmp_path / "out", key)
    img = open_(tmp_path / "out", stats, key)
    for off, n in [(0, 1), (4095, 2), (4096, 4096), (4000, 70000), (1 << 20, 500), (len(content) - 5, 99),
                   (len(content), 10), (len(content) + 10, 10), (12345, None)]:
        assert img.read("/big", off, n) == content[off:None if n is None else off + n], (off, n)


def test_lookup_errors(tmp_path):
    src = make_tree(tmp_path / "src")
    stats = build(src, tmp_path / "out")
    img = open_(tmp_path / "out", stats)
    with pytest.raises(FileNotFoundError):
        img.stat("/bin/nope")
    with pytest.raises(NotADirectoryError):
        img.stat("/bin/f1/x")
    with pytest.raises(NotADirectoryError):
        img.listdir("/bin/f1")
    with pytest.raises(NotADirectoryError):      # a symlink is not followed
        img.listdir("/dirlink")
    with pytest.raises(IsADirectoryError):
        img.read("/bin")
    with pytest.raises(OSError):
        img.readlink("/bin/f1")
    assert img.stat("bin/f1") == img.stat("/bin/./f1")


def test_deep_block_tree(tmp_path):
    """A file past 96*128 blocks needs two index levels; every level is checked."""
    assert [F.tree_depth(n) for n in (0, 96, 97, 96 * 128, 96 * 128 + 1)] == [0, 0, 1, 1, 2]
    assert F.level_counts(96 * 128 + 1) == [12289, 97, 1]
    src = tmp_path / "src"
    src.mkdir()
    chunk = data(2, 1 << 20)
    content = chunk * 48 + chunk[:4096 + 10]
    (src / "big").write_bytes(content)
    stats = build(src, tmp_path / "out")
    img = open_(tmp_path / "out", stats)
    for off in (0, 96 * 128 * 4096 - 3, len(content) - 20):
        assert img.read("/big", off, 40) == content[off:off + 40]
    img.verify_all()
    node = tmp_path / "out" / img.stat("/big").node
    raw = bytearray(node.read_bytes())
    raw[-1] ^= 1                    # the last block is the single level-2 index block
    node.write_bytes(raw)
    with pytest.raises(IntegrityError, match=r"index block 0 \(level 2\) of /big fails its MAC"):
        open_(tmp_path / "out", stats).read("/big", 0, 1)


# ---- determinism ----------------------------------------------------------------------------

@pytest.mark.parametrize("key", MODES)
def test_reproducible(tmp_path, key):
    a = make_tree(tmp_path / "a" / "src")
    b = make_tree(tmp_path / "elsewhere" / "b")
    for p in b.rglob("*"):          # other times must not matter
        os.utime(p, ns=(123, 456789), follow_symlinks=False)
    sa = build(a, tmp_path / "a" / "out", key)
    sb = build(b, tmp_path / "b-out", key, cache=tmp_path / "cache.json")
    assert sa.root_mac == sb.root_mac
    files_a = {p.name: p.read_bytes() for p in (tmp_path / "a" / "out").iterdir()}
    files_b = {p.name: p.read_bytes() for p in (tmp_path / "b-out").iterdir()}
    assert files_a == files_b
    # a different key, or none, gives another image
    other = build(a, tmp_path / "c", bytes(16) if key else KEY)
    assert other.root_mac != sa.root_mac
    # and a single changed permission bit changes the root MAC
    (b / "bin" / "f1").chmod(0o640)
    assert build(b, tmp_path / "b-out", key).root_mac != sa.root_mac


def test_encrypted_hides_content(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    secret = b"TOP-SECRET-" * 1000
    (src / "plain.txt").write_bytes(secret)
    build(src, tmp_path / "int")
    build(src, tmp_path / "enc", KEY)
    assert any(b"TOP-SECRET-" in p.read_bytes() for p in (tmp_path / "int").iterdir())
    for p in (tmp_path / "enc").iterdir():
        assert b"TOP-SECRET-" not in p.read_bytes() and b"plain.txt" not in p.read_bytes()
        assert b"SEFSNODE" not in p.read_bytes()
    # node names are keyed: they differ from the integrity-only image's hashes
    assert not set(os.listdir(tmp_path / "int")) - {F.SUPERBLOCK_FILE} & set(os.listdir(tmp_path / "enc"))


# ---- incremental builds -----------------------------------------------------------------------

@pytest.mark.parametrize("key", MODES)
def test_incremental_one_file(tmp_path, key, monkeypatch):
    src = make_tree(tmp_path / "src")
    out, cache = tmp_path / "out", tmp_path / "cache" / "image.json"
    first = build(src, out, key, cache=cache)
    img = open_(out, first, key)
    old_node = img.stat("/lib/x86_64/libc.so").node
    path_nodes = {img.stat(p).node for p in ("/", "/lib", "/lib/x86_64")}
    before = node_state(out)

    # a no-op rebuild reads no file and writes nothing
    opened = []     # files opened (not folders), by full path: the writer opens from folder fds
    real_open = os.open

    def spy(path, flags, *args, dir_fd=None, **kw):
        if not flags & os.O_DIRECTORY:
            where = os.readlink(f"/proc/self/fd/{dir_fd}") if dir_fd is not None else ""
            opened.append(os.path.join(where, os.fsdecode(path)))
        return real_open(path, flags, *args, dir_fd=dir_fd, **kw)
    monkeypatch.setattr(os, "open", spy)
    again = build(src, out, key, cache=cache)
    assert again.root_mac == first.root_mac
    assert (again.files_encoded, again.nodes_written, again.nodes_deleted) == (0, 0, 0)
    assert not [p for p in opened if p.startswith(str(src))]
    assert node_state(out) == before

    # one changed file: only it is read; it and the directories above it are rewritten
    (src / "lib" / "x86_64" / "libc.so").write_bytes(b"new libc")
    opened.clear()
    third = build(src, out, key, cache=cache)
    assert [p for p in opened if p.startswith(str(src))] == [str(src / "lib" / "x86_64" / "libc.so")]
    assert (third.files_encoded, third.bytes_encoded) == (1, 8)
    assert third.files_total == first.files_total and third.dirs_written == 3
    assert third.nodes_written == 4 and third.nodes_deleted == 4
    after = node_state(out)
    gone = set(before) - set(after)
    assert gone == path_nodes | {old_node}
    for name in set(before) - gone - {F.SUPERBLOCK_FILE}:
        assert after[name] == before[name], name       # untouched: same inode, same mtime
    img = open_(out, third, key)
    assert img.read("/lib/x86_64/libc.so") == b"new libc"
    report = img.verify_all()
    assert set(report.nodes) | {F.SUPERBLOCK_FILE} == set(after)
    # the same tree built from scratch gives the same image
    assert build(src, tmp_path / "fresh", key).root_mac == third.root_mac


@pytest.mark.parametrize("key", MODES)
def test_incremental_add_delete(tmp_path, key):
    src = make_tree(tmp_path / "src")
    out, cache = tmp_path / "out", tmp_path / "image.json"
    build(src, out, key, cache=cache)
    (src / "bin" / "f4096").unlink()
    shutil.rmtree(src / "empty" / "deeper")
    (src / "new" / "dir").mkdir(parents=True)
    (src / "new" / "dir" / "file").write_bytes(b"hello")
    os.symlink("new/dir/file", src / "newlink")
    stats = build(src, out, key, cache=cache)
    assert stats.files_encoded == 2             # the new file and the new link
    img = open_(out, stats, key)
    assert img.read("/new/dir/file") == b"hello" and img.readlink("/newlink") == "new/dir/file"
    with pytest.raises(FileNotFoundError):
        img.stat("/bin/f4096")
    assert img.listdir("/empty") == []
    report = img.verify_all()
    assert set(report.nodes) | {F.SUPERBLOCK_FILE} == set(os.listdir(out))   # old nodes collected
    assert build(src, tmp_path / "fresh", key).root_mac == stats.root_mac


def test_change_within_one_clock_tick(tmp_path):
    """A same-size change that keeps the mtime (same tick) right after a build is seen."""
    src = tmp_path / "src"
    src.mkdir()
    f = src / "f"
    f.write_bytes(b"version 1")
    cache = tmp_path / "image.json"
    build(src, tmp_path / "out", cache=cache)
    st = os.stat(f)
    f.write_bytes(b"version 2")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    stats = build(src, tmp_path / "out", cache=cache)
    assert stats.files_encoded == 1
    assert open_(tmp_path / "out", stats).read("/f") == b"version 2"


def test_cache_is_not_trusted_blindly(tmp_path):
    src = make_tree(tmp_path / "src")
    out, cache = tmp_path / "out", tmp_path / "image.json"
    first = build(src, out, cache=cache)
    # another key: the cache does not apply
    enc = build(src, out, KEY, cache=cache)
    assert enc.files_encoded == enc.files_total
    open_(out, enc, KEY).verify_all()
    # a node file that went missing is encoded again
    img = open_(out, enc, KEY)
    (out / img.stat("/bin/f1").node).unlink()
    again = build(src, out, KEY, cache=cache)
    assert again.files_encoded == 1 and again.root_mac == enc.root_mac
    open_(out, again, KEY).verify_all()
    # a corrupt cache file means a full build, not a failure
    cache.write_text("{not json")
    assert build(src, out, cache=cache).root_mac == first.root_mac
    # without a cache every file is encoded
    assert build(src, out).files_encoded == first.files_total


def test_interrupted_build_keeps_the_old_image(tmp_path, monkeypatch):
    src = make_tree(tmp_path / "src")
    out, cache = tmp_path / "out", tmp_path / "image.json"
    first = build(src, out, cache=cache)
    for p in (src / "bin").iterdir():
        p.write_bytes(b"changed " + p.name.encode())
    import occlum_tasks.image.writer as W
    real = W.encode_node
    calls = []

    def dying(*a, **k):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(W, "encode_node", dying)
    with pytest.raises(KeyboardInterrupt):
        build(src, out, cache=cache)
    open_(out, first).verify_all()              # still the old, complete image
    monkeypatch.setattr(W, "encode_node", real)
    stats = build(src, out, cache=cache)
    assert open_(out, stats).read("/bin/f1") == b"changed f1"
    assert set(open_(out, stats).verify_all().nodes) | {F.SUPERBLOCK_FILE} == set(os.listdir(out))
    # a first build that dies leaves no superblock: the folder cannot pass for an image
    monkeypatch.setattr(W, "encode_node", dying)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        build(src, tmp_path / "new")
    with pytest.raises(IntegrityError, match="superblock is missing"):
        open_image(tmp_path / "new", stats.root_mac, name=IMG)


def test_progress(tmp_path):
    src = make_tree(tmp_path / "src")
    seen = []
    stats = build(src, tmp_path / "out", progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (stats.bytes_total, stats.bytes_total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


# ---- source tree errors -----------------------------------------------------------------------

def test_special_files_are_refused(tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    os.mkfifo(src / "d" / "pipe")
    with pytest.raises(OcclumError, match=r"src/d/pipe: is a FIFO"):
        build(src, tmp_path / "out")
    os.unlink(src / "d" / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(src / "sock"))
        with pytest.raises(OcclumError, match=r"src/sock: is a socket"):
            build(src, tmp_path / "out")
    finally:
        sock.close()
    with pytest.raises(OcclumError, match="must not contain each other"):
        build(src, src / "out")


def test_unreadable_file_is_named(tmp_path, monkeypatch):
    src = make_tree(tmp_path / "src")
    real_open = os.open

    def denying(p, *a, **k):
        if os.fsdecode(p).endswith("libc.so"):
            raise PermissionError(13, "Permission denied")
        return real_open(p, *a, **k)
    monkeypatch.setattr(os, "open", denying)
    with pytest.raises(OcclumError, match=r"src/lib/x86_64/libc.so: cannot read it \(Permission denied\)"):
        build(src, tmp_path / "out")


def test_symlinks_are_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host file")
    src = tmp_path / "src"
    src.mkdir()
    os.symlink(outside, src / "escape")
    stats = build(src, tmp_path / "out")
    img = open_(tmp_path / "out", stats)
    assert img.stat("/escape").is_symlink and img.readlink("/escape") == str(outside)
    assert stats.files_total == 1


# ---- tampering ----------------------------------------------------------------------------------

def _flip(path, pos):
    raw = bytearray(path.read_bytes())
    raw[pos] ^= 0x40
    path.write_bytes(raw)


def _expect_failure(out, stats, key, image_path):
    with pytest.raises(IntegrityError) as e:
        open_(out, stats, key).verify_all()
    msg = str(e.value)
    if not image_path.isprintable():    # messages escape what would break the line
        image_path = image_path.encode("unicode_escape", "backslashreplace").decode()
    assert "\n" not in msg and msg.startswith(IMG + ": "), msg
    assert re.search(rf" {re.escape(image_path)}( |$)", msg), msg
    return msg


@pytest.mark.parametrize("key", MODES)
def test_every_node_file_is_protected(tmp_path, key):
    src = make_tree(tmp_path / "src")
    out = tmp_path / "out"
    stats = build(src, out, key)
    nodes = open_(out, stats, key).verify_all().nodes
    assert len(nodes) == len(os.listdir(out)) - 1
    for name, image_path in nodes.items():
        node = out / name
        size = node.stat().st_size
        for pos in sorted({0, 17, 1100, 4096 + 5, size // 2, size - 1} & set(range(size))):
            _flip(node, pos)
            _expect_failure(out, stats, key, image_path)
            _flip(node, pos)
        original = node.read_bytes()
        node.write_bytes(original + b"\0")                     # grown
        assert "wrong size" in _expect_failure(out, stats, key, image_path)
        if size > 4096:
            node.write_bytes(original[:-4096])                 # a block cut off
            _expect_failure(out, stats, key, image_path)
        node.unlink()
        assert "is missing" in _expect_failure(out, stats, key, image_path)
        node.write_bytes(original)
    open_(out, stats, key).verify_all()


@pytest.mark.parametrize("key", MODES)
def test_superblock_is_protected(tmp_path, key):
    src = make_tree(tmp_path / "src")
    out = tmp_path / "out"
    stats = build(src, out, key)
    sb = out / F.SUPERBLOCK_FILE
    for pos in range(F.SUPERBLOCK.size):
        _flip(sb, pos)
        with pytest.raises(IntegrityError, match=f"^{IMG}: "):
            open_(out, stats, key)
        _flip(sb, pos)
    sb.unlink()
    with pytest.raises(IntegrityError, match="superblock is missing"):
        open_(out, stats, key)


@pytest.mark.parametrize("key", MODES)
def test_swapped_blocks_and_nodes(tmp_path, key):
    src = make_tree(tmp_path / "src")
    out = tmp_path / "out"
    stats = build(src, out, key)
    img = open_(out, stats, key)
    # two data blocks of one file swapped
    node = out / img.stat("/bin/f1048576").node
    original = node.read_bytes()
    raw = bytearray(original)
    b1, b2 = raw[4096:8192], raw[8192:12288]
    raw[4096:8192], raw[8192:12288] = b2, b1
    node.write_bytes(raw)
    with pytest.raises(IntegrityError, match=r"block 0 of /bin/f1048576 fails its MAC"):
        open_(out, stats, key).read("/bin/f1048576", 0, 10)
    node.write_bytes(original)
    # the same block of two different files swapped
    a, b = out / img.stat("/bin/f4097").node, out / img.stat("/bin/f4096").node
    oa, ob = a.read_bytes(), b.read_bytes()
    ra, rb = bytearray(oa), bytearray(ob)
    ra[4096:8192], rb[4096:8192] = ob[4096:8192], oa[4096:8192]
    a.write_bytes(ra)
    b.write_bytes(rb)
    with pytest.raises(IntegrityError, match=r"block 0 of /bin/f4097 fails its MAC"):
        open_(out, stats, key).read("/bin/f4097")
    with pytest.raises(IntegrityError, match=r"block 0 of /bin/f4096 fails its MAC"):
        open_(out, stats, key).read("/bin/f4096")
    a.write_bytes(oa)
    b.write_bytes(ob)
    open_(out, stats, key).verify_all()
    # node files of two files with the same content swapped: the position (node id) differs
    n1, n2 = out / img.stat("/same1").node, out / img.stat("/same2").node
    assert n1.read_bytes() != n2.read_bytes()
    r1, r2 = n1.read_bytes(), n2.read_bytes()
    n1.write_bytes(r2)
    n2.write_bytes(r1)
    with pytest.raises(IntegrityError, match=r"file /same1 fails its MAC"):
        open_(out, stats, key).read("/same1")
    with pytest.raises(IntegrityError, match=r"file /same2 fails its MAC"):
        open_(out, stats, key).read("/same2")


@pytest.mark.parametrize("key", MODES)
def test_tags_bind_positions(tmp_path, key):
    """Equal blocks at different places (index, file) get different tags and ciphertexts."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(bytes(3 * 4096))
    (src / "b").write_bytes(bytes(3 * 4096))
    stats = build(src, tmp_path / "out", key)
    img = open_(tmp_path / "out", stats, key)
    raw = {n: (tmp_path / "out" / img.stat(n).node).read_bytes() for n in ("/a", "/b")}
    if key is None:     # the header is plain: read the entries' tags
        tags = [raw[n][F.HEADER_ENTRIES_OFFSET + i * 32 + 16:][:16] for n in raw for i in range(3)]
        assert len(set(tags)) == 6
    else:               # no two stored blocks alike
        blocks = {raw[n][i:i + 4096] for n in raw for i in range(4096, 4 * 4096, 4096)}
        assert len(blocks) == 6


def test_wrong_root_mac_and_keys(tmp_path):
    src = make_tree(tmp_path / "src")
    plain = build(src, tmp_path / "plain")
    enc = build(src, tmp_path / "enc", KEY)
    with pytest.raises(IntegrityError, match=f"^{IMG}: root node does not match the root MAC$"):
        open_image(tmp_path / "plain", bytes(16), name=IMG)
    with pytest.raises(IntegrityError, match="root node does not match the root MAC"):
        open_image(tmp_path / "enc", plain.root_mac, key=KEY, name=IMG)
    with pytest.raises(IntegrityError, match=f"^{IMG}: the image key does not match"):
        open_image(tmp_path / "enc", enc.root_mac, key=bytes(16), name=IMG)
    with pytest.raises(IntegrityError, match="an image key is needed"):
        open_image(tmp_path / "enc", enc.root_mac, name=IMG)
    with pytest.raises(IntegrityError, match="not encrypted, but an image key was given"):
        open_image(tmp_path / "plain", plain.root_mac, key=KEY, name=IMG)
    # the root MAC is also accepted in its text form; the folder names the image by default
    img = open_image(tmp_path / "enc", format_mac(enc.root_mac), key=KEY)
    assert img.read("/bin/f1") == (src / "bin" / "f1").read_bytes()
    with pytest.raises(IntegrityError, match=re.escape(str(tmp_path / "plain"))):
        open_image(tmp_path / "plain", bytes(16))


# ---- keys -------------------------------------------------------------------------------------

def test_key_text_forms():
    text = generate_image_key()
    assert re.fullmatch(r"([0-9a-f]{2}-){15}[0-9a-f]{2}", text) and len(text) == 47
    assert generate_image_key() != text
    key = parse_image_key(f"  {text.upper()}\n")
    assert key == bytes.fromhex(text.replace("-", "")) and len(key) == 16
    assert format_mac(key) == text
    assert parse_mac(format_mac(bytes(range(16)))) == bytes(range(16))
    assert format_mac(b"\x00\xab") == "00-ab"
    for bad in ["", "00-11", "0g-" * 15 + "00", "-".join(["000"] * 16), ":".join(["00"] * 16),
                "-".join(["00"] * 17), "00112233445566778899aabbccddeeff", "-".join(["00"] * 15) + "-"]:
        with pytest.raises(ValueError, match="invalid image key"):
            parse_image_key(bad)
    with pytest.raises(ValueError, match="16 hex byte pairs joined by '-'"):
        parse_mac("00-11")
    with pytest.raises(ValueError):
        build_image(Path("."), Path("x"), key=b"short")
