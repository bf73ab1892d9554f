"""The LibOS file system (occlum_tasks/libos/fs): the VFS, unionfs over the SEFS image
and the writable layer, hostfs, procfs, devfs, ramfs, and the file system calls.

Python-level tests drive the VFS directly (fast); the C programs in
tests/programs/fs_*.c check the system calls from inside the enclave, over a host
folder, over a union of a real image and a real writable layer, and (end to end) in
instances built and run with the `occlum` command.
"""
import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from occlum_tasks.image.reader import open_image
from occlum_tasks.image.writable import open_writable
from occlum_tasks.image.writer import build_image
from occlum_tasks.libos.enclave import host_folder_root, run_program
from occlum_tasks.libos.errno import SysError
from occlum_tasks.libos.fs.hostfs import HostFs
from occlum_tasks.libos.fs.mounts import MountSet, host_root, mount_from_config
from occlum_tasks.libos.fs.ramfs import RamFs
from occlum_tasks.libos.fs.sefs_ro import ImageLayer
from occlum_tasks.libos.fs.sefs_rw import open_layer
from occlum_tasks.libos.fs.unionfs import UnionFs
from occlum_tasks.sgx import keys as K

MUSL_LOADER = Path("/lib/ld-musl-x86_64.so.1")
LIMITS = dict(user_space_size=256 << 20, default_stack_size=4 << 20, default_heap_size=32 << 20)
LAYER_KEY = bytes(range(16))
# the image the unionfs tests change (see tests/programs/fs_union.c)
IMAGE_DATA = {"data/orig.txt": "original\n", "data/gone.txt": "gone\n", "data/ren.txt": "rename me\n",
              "data/full/a": "a\n", "data/full/b": "b\n", "data/mode.txt": "mode\n",
              "data/trunc.txt": "0123456789"}


@pytest.fixture(autouse=True)
def secret_file(tmp_path, monkeypatch):
    """Every test gets its own platform secret; the user's real one is never touched."""
    path = tmp_path / "platform" / "secret"
    monkeypatch.setenv(K.SECRET_FILE_ENV, str(path))
    return path


def errno_of(fn, *args):
    with pytest.raises(SysError) as info:
        fn(*args)
    return info.value.errno


# ---- helpers: a root with programs, runs, images ------------------------------------------------

def program_tree(folder: Path, programs: dict) -> Path:
    """/bin/<name> for each program, the musl loader, and the usual empty folders."""
    for sub in ("bin", "lib", "work", "proc", "dev", "tmp", "root"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for name, binary in programs.items():
        shutil.copy(binary, folder / "bin" / name)
    shutil.copy(MUSL_LOADER, folder / "lib" / MUSL_LOADER.name)
    return folder


def run(tmp_path, mounts, name, args=(), log_level="off"):
    """Run /bin/<name> over `mounts`; returns (status, stdout, stderr)."""
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open("/dev/null", "rb") as stdin, open(out, "wb") as o, open(err, "wb") as e:
        status = run_program(mounts, "/bin/" + name, ["/bin/" + name, *args], [],
                             stdio=(stdin.fileno(), o.fileno(), e.fileno()), log_level=log_level, **LIMITS)
    return status, out.read_text(errors="replace"), err.read_text(errors="replace")


def build_test_image(tmp_path, programs, extra=IMAGE_DATA):
    src = program_tree(tmp_path / "image-src", programs)
    for rel, text in extra.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    (src / "data" / "empty").mkdir(parents=True, exist_ok=True)
    if not (src / "data" / "link").is_symlink():
        os.symlink("orig.txt", src / "data" / "link")
    os.chmod(src / "data" / "mode.txt", 0o644)
    stats = build_image(src, tmp_path / "image")
    return tmp_path / "image", stats.root_mac


def union_mounts(image_dir, mac, layer_dir, extra=()) -> MountSet:
    """unionfs at / (the image below a real writable layer), procfs and devfs."""
    mounts = MountSet()
    image = open_image(image_dir, mac, name="image")
    mounts.mount("/", UnionFs(ImageLayer(image), open_layer(layer_dir, LAYER_KEY, "layer"), mounts.new_dev()))
    for target, fs in extra:
        mounts.mount(target, fs)
    mounts.mount_system()
    return mounts


# ---- the VFS from Python, over a host folder --------------------------------------------------------

def test_vfs_paths_links_and_mounts(tmp_path):
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f").write_text("F")
    os.symlink("b/f", root / "a" / "rel")
    os.symlink("/a/b", root / "abs")
    os.symlink("nowhere", root / "dangling")
    for i in range(41):                      # a chain of 41 links: one too many
        os.symlink("c%d" % (i + 1), root / ("c%d" % i))
    (root / "c41").write_text("end")
    with host_root(root) as mounts:
        vfs = mounts.vfs()
        top = vfs.root
        assert vfs.resolve("/a/rel", top).path == "/a/b/f"
        assert vfs.resolve("/abs/f", top).path == "/a/b/f"
        assert vfs.resolve("/abs/../../../../a/./b//f", top).path == "/a/b/f"
        assert vfs.resolve("/a/rel", top, follow=False).path == "/a/rel"
        assert vfs.resolve("/..", top).path == "/"
        assert mounts.read_file("/abs/f") == b"F"
        assert vfs.resolve("/c1", top).path == "/c41"          # 40 links are fine
        assert errno_of(vfs.resolve, "/c0", top) == errno.ELOOP
        assert errno_of(vfs.resolve, "/dangling", top) == errno.ENOENT
        assert errno_of(vfs.resolve, "/a/b/f/", top) == errno.ENOTDIR
        assert errno_of(vfs.resolve, "/a/b/f/x", top) == errno.ENOTDIR
        assert errno_of(vfs.resolve, "", top) == errno.ENOENT
        assert errno_of(vfs.resolve, "/" + "n" * 256, top) == errno.ENAMETOOLONG
        # mount points: /proc and /dev, and `..` out of them
        assert vfs.resolve("/proc/..", top).path == "/"
        assert vfs.resolve("/dev/../a", top).path == "/a"
        assert vfs.resolve("/dev/null", top).inode.fs is mounts.mounts["/dev"]
        parent, name, trailing = vfs.resolve_parent("/a/b/new/", top)
        assert (parent.path, name, trailing) == ("/a/b", "new", True)
        assert vfs.resolve_parent("/", top)[1] is None


def test_hostfs_is_confined_to_its_folder(tmp_path):
    """No name, `..` or link leads out of a hostfs: links are followed as enclave paths."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host secret")
    folder = tmp_path / "shared"
    (folder / "deep").mkdir(parents=True)
    os.symlink("../outside", folder / "rel")
    os.symlink(str(outside), folder / "abs")
    os.symlink("../../outside/secret", folder / "deep" / "up")
    mounts = MountSet()
    mounts.mount("/", RamFs(mounts.new_dev()))
    mounts.mount("/host", HostFs(folder, mounts.new_dev()))
    mounts.mount_system()
    vfs = mounts.vfs()
    for path in ("/host/rel/secret", "/host/abs/secret", "/host/../outside/secret",
                 "/host/deep/up", "/host/deep/../../outside/secret", "/host/deep/../../../../outside/secret"):
        assert errno_of(mounts.read_file, path) == errno.ENOENT, path
    # the links lead to the enclave's own paths: give the enclave an /outside of its own
    vfs.root.inode.mkdir("outside", 0o755)
    enclave_file = vfs.resolve("/outside", vfs.root).inode.create("secret", 0o644)
    enclave_file.open(2).write_at(0, b"enclave file")
    assert mounts.read_file("/host/rel/secret") == b"enclave file"
    assert mounts.read_file("/host/deep/up") == b"enclave file"
    assert errno_of(mounts.read_file, "/host/abs/secret") == errno.ENOENT   # a host path
    # writing through the hostfs reaches the folder, and only the folder
    host = vfs.resolve("/host", vfs.root).inode
    host.create("made", 0o600).open(2).write_at(0, b"from the enclave")
    host.symlink("escape", "/outside")
    assert (folder / "made").read_text() == "from the enclave"
    assert os.readlink(folder / "escape") == "/outside"
    assert (outside / "secret").read_text() == "host secret"
    mounts.close()


# ---- the unionfs from Python: copy-up, whiteouts, opaque directories, persistence ---------------------

def test_union_copy_up_whiteout_and_the_image_unchanged(tmp_path, compile_program):
    image_dir, mac = build_test_image(tmp_path, {})
    layer = tmp_path / "layer"
    with union_mounts(image_dir, mac, layer) as mounts:
        vfs = mounts.vfs()
        data = vfs.resolve("/data", vfs.root)
        orig = vfs.resolve("/data/orig.txt", vfs.root)
        ino = orig.inode.metadata().ino
        handle = orig.inode.open(2)
        handle.write_at(0, b"CHANGED!")
        handle.release()
        assert mounts.read_file("/data/orig.txt") == b"CHANGED!\n"
        assert orig.inode.metadata().ino == ino            # the same file after its copy-up
        data.inode.unlink("gone.txt")
        sub = vfs.resolve("/data/full", vfs.root).inode
        sub.unlink("a")
        sub.unlink("b")
        data.inode.rmdir("full")
        data.inode.mkdir("full", 0o755)
        names = sorted(name for name, _ino, _type in data.inode.readdir())
        assert names == ["empty", "full", "link", "mode.txt", "orig.txt", "ren.txt", "trunc.txt"]
        assert vfs.resolve("/data/full", vfs.root).inode.readdir() == []
        assert errno_of(data.inode.rename, "empty", data.inode, "moved") == errno.EXDEV
    # the image itself never changed
    image = open_image(image_dir, mac)
    image.verify_all()
    assert image.read("/data/orig.txt") == b"original\n"
    assert sorted(image.listdir("/data/full")) == ["a", "b"]
    # the changes are in the writable layer, which the next mount sees
    with union_mounts(image_dir, mac, layer) as mounts:
        vfs = mounts.vfs()
        assert mounts.read_file("/data/orig.txt") == b"CHANGED!\n"
        assert errno_of(mounts.read_file, "/data/gone.txt") == errno.ENOENT
        assert vfs.resolve("/data/full", vfs.root).inode.readdir() == []
    layer_fs = open_writable(layer, LAYER_KEY)
    assert layer_fs.is_whiteout("/data/gone.txt") and layer_fs.is_opaque("/data/full")
    layer_fs.close()


def test_union_without_a_writable_layer_is_read_only(tmp_path):
    image_dir, mac = build_test_image(tmp_path, {})
    mounts = MountSet()
    mounts.mount("/", UnionFs(ImageLayer(open_image(image_dir, mac)), None, 1))
    vfs = mounts.vfs()
    data = vfs.resolve("/data", vfs.root).inode
    assert errno_of(data.create, "x", 0o644) == errno.EROFS
    assert errno_of(data.unlink, "orig.txt") == errno.EROFS
    assert errno_of(vfs.resolve("/data/orig.txt", vfs.root).inode.open, 2) == errno.EROFS
    assert mounts.read_file("/data/link") == b"original\n"


# ---- system calls from C programs --------------------------------------------------------------------

@pytest.mark.parametrize("where", ["hostfs", "union", "ramfs"])
def test_file_system_calls(compile_program, tmp_path, where):
    """fs_ops.c: I/O, O_APPEND, holes, ftruncate, dup/fcntl, EMFILE, names, links,
    getdents64, *at calls, cwd, attributes, EFAULT, on each writable file system."""
    programs = {"fs_ops": compile_program("fs_ops.c")}
    if where == "hostfs":
        mounts = host_folder_root(program_tree(tmp_path / "root", programs))
        folder = "/work"
    elif where == "union":
        image_dir, mac = build_test_image(tmp_path, programs)
        mounts = union_mounts(image_dir, mac, tmp_path / "layer")
        folder = "/work"
    else:
        mounts = host_root(program_tree(tmp_path / "root", programs), [("/tmp", RamFs(99))])
        folder = "/tmp"
    with mounts:
        status, out, err = run(tmp_path, mounts, "fs_ops", [folder])
    assert (status, out.splitlines()[-1:], err) == (0, ["fs ops ok"], ""), out + err


def test_proc_and_dev(compile_program, tmp_path):
    """fs_proc.c: /proc/self/{exe,maps,cmdline,fd}, cpuinfo (no AVX), meminfo, <pid>/stat,
    /dev/{null,zero,urandom,random,arandom,stdout,fd,shm}, file mappings, mount points."""
    programs = {"fs_proc": compile_program("fs_proc.c")}
    image_dir, mac = build_test_image(tmp_path, programs)
    with union_mounts(image_dir, mac, tmp_path / "layer") as mounts:
        status, out, err = run(tmp_path, mounts, "fs_proc", ["/bin/fs_proc"])
    assert status == 0, out + err
    assert out.splitlines() == ["to stdout via /dev/stdout", "to stdout via /dev/fd/1", "fs proc ok"]


def test_programs_and_their_loader_are_found_through_links(compile_program, tmp_path):
    """exec path resolution: the program through a link, its interpreter too (as
    /lib/libc.so -> ld-musl), and /proc/self/exe shows the real path."""
    root = program_tree(tmp_path / "root", {"fs_proc": compile_program("fs_proc.c")})
    os.symlink("fs_proc", root / "bin" / "alias")
    os.rename(root / "lib" / MUSL_LOADER.name, root / "lib" / "libc.so")
    os.symlink("libc.so", root / "lib" / MUSL_LOADER.name)
    with host_folder_root(root) as mounts:
        status, out, err = run(tmp_path, mounts, "alias", ["/bin/fs_proc"])
    assert status == 0, out + err


def test_mounts_from_the_config(tmp_path):
    """The verified config's mount list: unionfs at /, hostfs, ramfs, a sefs of its own
    (persistent), a temporary sefs; procfs and devfs are always there."""
    image_dir, mac = build_test_image(tmp_path, {})
    (tmp_path / "inst" / "shared").mkdir(parents=True)
    (tmp_path / "inst" / "shared" / "h.txt").write_text("host file")
    config = [
        {"target": "/", "type": "unionfs", "options": {"layers": [
            {"target": "/", "type": "sefs", "source": "./build/mount/__ROOT", "options": {"MAC": "x"}},
            {"target": "/", "type": "sefs", "source": "./run/mount/__ROOT", "options": {}}]}},
        {"target": "/host", "type": "hostfs", "source": "shared", "options": {}},
        {"target": "/mnt/ram", "type": "ramfs", "options": {}},
        {"target": "/mnt/keep", "type": "sefs", "source": "./run/keep", "options": {}},
        {"target": "/mnt/tmp", "type": "sefs", "source": "./run/tmp", "options": {"temporary": True}},
        {"target": "/missing", "type": "hostfs", "source": "no-such-folder", "options": {}},
    ]

    def mount():
        return mount_from_config(config, instance_dir=tmp_path / "inst", image=open_image(image_dir, mac),
                                 writable_layer_dir=tmp_path / "inst" / "run" / "mount" / "__ROOT",
                                 writable_layer_key=LAYER_KEY)

    with mount() as mounts:
        assert sorted(mounts.mounts) == ["/", "/dev", "/host", "/mnt/keep", "/mnt/ram", "/mnt/tmp", "/proc"]
        assert len(mounts.warnings) == 1 and "no-such-folder" in mounts.warnings[0]
        vfs = mounts.vfs()
        assert mounts.read_file("/host/h.txt") == b"host file"
        assert mounts.read_file("/data/orig.txt") == b"original\n"
        for target in ("/mnt/ram", "/mnt/keep", "/mnt/tmp"):
            vfs.resolve(target, vfs.root).inode.create("f", 0o644).open(2).write_at(0, target.encode())
    with mount() as mounts:
        assert mounts.read_file("/mnt/keep/f") == b"/mnt/keep"      # a sefs keeps its files
        for target in ("/mnt/ram", "/mnt/tmp"):                     # the others start empty
            assert errno_of(mounts.read_file, target + "/f") == errno.ENOENT
    assert (tmp_path / "inst" / "run" / "keep").is_dir()


def test_union_changes_from_the_enclave(compile_program, tmp_path):
    """fs_union.c changes files of the image; a second boot over the same writable
    layer sees every change; the image is unchanged."""
    image_dir, mac = build_test_image(tmp_path, {"fs_union": compile_program("fs_union.c")})
    for mode in ("change", "check"):
        with union_mounts(image_dir, mac, tmp_path / "layer") as mounts:
            status, out, err = run(tmp_path, mounts, "fs_union", [mode])
        assert (status, out.splitlines()[-1:], err) == (0, ["fs union %s ok" % mode], ""), out + err
    image = open_image(image_dir, mac)
    image.verify_all()
    for rel, text in IMAGE_DATA.items():
        assert image.read("/" + rel) == text.encode()


def test_hostfs_from_the_enclave(compile_program, tmp_path):
    """fs_host.c: reads and writes host files through /host; every escape fails."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("host secret")
    folder = tmp_path / "shared"
    (folder / "deep").mkdir(parents=True)
    (folder / "in.txt").write_text("from the host\n")
    os.symlink("in.txt", folder / "inlink")
    os.symlink("/host/in.txt", folder / "abs_in")
    os.symlink("../outside", folder / "rel")
    os.symlink(str(outside), folder / "abs")
    root = program_tree(tmp_path / "root", {"fs_host": compile_program("fs_host.c")})
    (root / "host").mkdir()
    with host_root(root, [("/host", HostFs(folder, 77))]) as mounts:
        status, out, err = run(tmp_path, mounts, "fs_host")
    assert (status, out.splitlines()[-1:], err) == (0, ["fs host ok"], ""), out + err
    assert (folder / "out.txt").read_text() == "from the enclave\n"
    assert os.readlink(folder / "made_link") == "/etc"
    assert (outside / "secret.txt").read_text() == "host secret"
    assert sorted(os.listdir(outside)) == ["secret.txt"]


def test_a_tampered_image_block_is_eio_and_named(compile_program, tmp_path):
    """A block that fails its MAC while the program runs: the read fails with EIO, and
    stderr names the block even with logging off."""
    programs = {"fs_persist": compile_program("fs_persist.c")}
    image_dir, mac = build_test_image(tmp_path, programs, dict(IMAGE_DATA, **{"data/orig.txt": "x" * 10000}))
    node = open_image(image_dir, mac).stat("/data/orig.txt").node
    with open(image_dir / node, "r+b") as f:       # one bit of every block after the header
        for offset in range(4096 + 100, os.fstat(f.fileno()).st_size, 4096):
            f.seek(offset)
            byte = f.read(1)
            f.seek(offset)
            f.write(bytes([byte[0] ^ 1]))
    with union_mounts(image_dir, mac, tmp_path / "layer") as mounts:
        status, out, err = run(tmp_path, mounts, "fs_persist", ["read", "/data/orig.txt", "x"])
    assert status == 6 and "I/O error" in out, out + err
    assert "fails its MAC" in err and "/data/orig.txt" in err


def test_shared_mapping_is_written_back_at_exit(compile_program, tmp_path):
    image_dir, mac = build_test_image(tmp_path, {"fs_persist": compile_program("fs_persist.c")})
    with union_mounts(image_dir, mac, tmp_path / "layer") as mounts:
        status, out, err = run(tmp_path, mounts, "fs_persist", ["mapwrite", "/root/mapped", "via a mapping"])
        assert status == 0, out + err
        status, out, err = run(tmp_path, mounts, "fs_persist", ["read", "/root/mapped", "via a mapping"])
        assert status == 0, out + err


def test_bench_program_checks_its_data(compile_program, tmp_path):
    """fs_bench.c (the throughput benchmark's program) on the writable layer."""
    image_dir, mac = build_test_image(tmp_path, {"fs_bench": compile_program("fs_bench.c")})
    with union_mounts(image_dir, mac, tmp_path / "layer") as mounts:
        status, out, err = run(tmp_path, mounts, "fs_bench", ["/root/bench.dat", "2"])
    assert status == 0 and "MB/s" in out, out + err


# ---- end to end: instances built and run with the occlum command ----------------------------------

def occlum(cwd, *args, check=True):
    proc = subprocess.run([sys.executable, "-m", "occlum_tasks.cli", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"occlum {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture()
def instance(tmp_path, compile_program):
    occlum(tmp_path, "new", "inst")
    inst = tmp_path / "inst"
    for name in ("fs_persist", "fs_union"):
        shutil.copy(compile_program(name + ".c"), inst / "image" / "bin" / name)
    for rel, text in IMAGE_DATA.items():
        (inst / "image" / rel).parent.mkdir(parents=True, exist_ok=True)
        (inst / "image" / rel).write_text(text)
    (inst / "image" / "data" / "empty").mkdir()
    os.symlink("orig.txt", inst / "image" / "data" / "link")
    os.chmod(inst / "image" / "data" / "mode.txt", 0o644)
    occlum(inst, "build")
    return inst


def test_instance_writable_layer_persists_and_follows_the_signer(instance, tmp_path):
    inst = instance
    run_ = lambda *args: occlum(inst, "run", *args, check=False)     # noqa: E731
    first = run_("/bin/fs_persist", "write", "/root/note.txt", "kept across runs")
    assert first.returncode == 0, first.stdout + first.stderr
    again = run_("/bin/fs_persist", "read", "/root/note.txt", "kept across runs")
    assert again.returncode == 0, again.stdout + again.stderr
    for mode in ("change", "check"):
        proc = run_("/bin/fs_union", mode)
        assert proc.returncode == 0 and proc.stdout.endswith("fs union %s ok\n" % mode), proc.stdout + proc.stderr
    # the file is in run/ only, and encrypted there
    layer = inst / "run" / "mount" / "__ROOT"
    assert not any(b"kept across runs" in p.read_bytes() for p in layer.iterdir() if p.is_file())
    # another signer: the build moves run/ aside, the file is gone for the new enclave
    key = rsa.generate_private_key(public_exponent=3, key_size=3072)
    pem = tmp_path / "other.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    occlum(inst, "build", "--sign-key", pem)
    (aside,) = inst.glob("run.old-*")
    gone = run_("/bin/fs_persist", "absent", "/root/note.txt")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    # run/ restored by hand: the launch refuses it (its signer is recorded) ...
    shutil.rmtree(inst / "run")
    shutil.copytree(aside, inst / "run", symlinks=True)
    refused = run_("/bin/fs_persist", "read", "/root/note.txt", "kept across runs")
    assert refused.returncode == 1 and "another enclave owner" in refused.stderr, refused.stderr
    # ... and without the record, the layer itself cannot be opened with the new key
    (inst / "run" / ".owner").unlink()
    refused = run_("/bin/fs_persist", "read", "/root/note.txt", "kept across runs")
    assert refused.returncode == 1 and "kept across runs" not in refused.stdout, refused.stdout
    assert "run/mount/__ROOT" in refused.stderr and len(refused.stderr.splitlines()) == 1, refused.stderr
