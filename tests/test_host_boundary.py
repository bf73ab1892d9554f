"""The host boundary (issue 7, section 5): no host-side file operation of the build, the
image, or the writable layer follows a planted symbolic link; hostfs never reaches
build/, run/ or the platform secret; each mount's writable layer has its own key; sefs
mount sources stay inside the instance. Unit tests first, then the attack end to end:
a guest plants a link through /host and makes the writable layer commit."""
import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from occlum_tasks import fsutil
from occlum_tasks.config import load_config, render_template
from occlum_tasks.errors import ConfigError, IntegrityError, OcclumError
from occlum_tasks.image.keys import mount_key
from occlum_tasks.image.reader import open_image
from occlum_tasks.image.writable import open_writable
from occlum_tasks.image.writer import build_image
from occlum_tasks.libos.errno import SysError
from occlum_tasks.libos.fs.hostfs import HostFs

KEY = bytes(range(16))
VICTIM_TEXT = "a host file outside the instance\n"
NODE_NAME = "0123456789abcdef0123456789abcdef"      # what a layer's or image's GC deletes


@pytest.fixture
def victim(tmp_path):
    """A host file and a folder outside the instance, which nothing may change."""
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / NODE_NAME).write_text(VICTIM_TEXT)
    (tmp_path / "victim" / ".tmp-superblock").write_text(VICTIM_TEXT)
    (tmp_path / "victim.txt").write_text(VICTIM_TEXT)
    return tmp_path


def unchanged(top):
    folder = top / "victim"
    return ((top / "victim.txt").read_text() == VICTIM_TEXT
            and sorted(os.listdir(folder)) == sorted([NODE_NAME, ".tmp-superblock"])
            and all((folder / n).read_text() == VICTIM_TEXT for n in os.listdir(folder)))


# ---- fsutil ----------------------------------------------------------------------------------

def test_paths_are_walked_without_following_links(tmp_path, victim):
    inst = tmp_path / "inst"
    (inst / "build").mkdir(parents=True)
    os.symlink(victim / "victim", inst / "build" / "mount")
    with pytest.raises(fsutil.LinkRefused) as info:
        fsutil.open_dir("build/mount/__ROOT", base=inst, create=True)
    assert str(info.value).startswith("build/mount: is a symbolic link")
    with pytest.raises(fsutil.LinkRefused):
        fsutil.write_atomic("build/mount/x", "data", base=inst)
    # a link at the target itself is replaced, never written through
    os.symlink(victim / "victim.txt", inst / "build" / "out")
    fsutil.write_atomic(inst / "build" / "out", "new")
    assert (inst / "build" / "out").read_text() == "new" and not (inst / "build" / "out").is_symlink()
    # cleaning removes links, not what they point to
    os.symlink(victim / "victim", inst / "build" / "tree")
    fsutil.remove_tree("build/tree", base=inst)
    fsutil.remove_tree("build/mount", base=inst)
    os.symlink(victim / "victim", inst / "build" / "mount2")
    with pytest.raises(fsutil.LinkRefused):
        fsutil.remove_tree(f"build/mount2/{NODE_NAME}", base=inst)
    assert sorted(os.listdir(inst / "build")) == ["mount2", "out"]
    assert unchanged(victim)


# ---- the writable layer ----------------------------------------------------------------------------

def test_a_planted_temporary_superblock_is_not_written_through(tmp_path, victim):
    """The attack of the issue, on the host side: .tmp-superblock a link to a host file."""
    inst = tmp_path / "inst"
    fs = open_writable("run/mount/__ROOT", KEY, base=inst)
    layer = inst / "run" / "mount" / "__ROOT"
    os.symlink(victim / "victim.txt", layer / ".tmp-superblock")
    fs.create("/kept", 0o644)
    fs.write("/kept", 0, b"fsynced")
    fs.fsync("/kept")
    assert unchanged(victim)
    assert (layer / "superblock").is_file() and not (layer / "superblock").is_symlink()
    os.symlink(victim / "victim.txt", layer / ".tmp-superblock")
    fs.close()          # the last commit too
    assert unchanged(victim)
    fs = open_writable("run/mount/__ROOT", KEY, base=inst)
    assert fs.read("/kept", 0, 100) == b"fsynced"
    fs.close()


def test_links_to_or_in_the_layer_folder_are_refused(tmp_path, victim):
    inst = tmp_path / "inst"
    (inst / "run").mkdir(parents=True)
    os.symlink(victim / "victim", inst / "run" / "mount")
    with pytest.raises(fsutil.LinkRefused) as info:
        open_writable("run/mount/__ROOT", KEY, base=inst)
    assert "run/mount: is a symbolic link" in str(info.value)
    # a node file replaced by a link to a copy of itself is refused, not followed
    os.unlink(inst / "run" / "mount")
    fs = open_writable("run/mount/__ROOT", KEY, base=inst)
    fs.create("/f", 0o644)
    fs.write("/f", 0, b"x" * 5000)
    fs.close()
    layer = inst / "run" / "mount" / "__ROOT"
    nodes = [p for p in layer.iterdir() if len(p.name) == 32]
    for node in nodes:
        shutil.copy(node, victim / "victim" / ("copy-" + node.name))
        node.unlink()
        os.symlink(victim / "victim" / ("copy-" + node.name), node)
    with pytest.raises(OSError) as info:
        fs = open_writable("run/mount/__ROOT", KEY, base=inst)
        fs.read("/f", 0, 10)
    assert info.value.errno == errno.ELOOP or "symbolic link" in str(info.value)


# ---- the image writer and reader -------------------------------------------------------------------

def test_image_build_refuses_a_linked_destination(tmp_path, victim):
    """A link at build/mount/__ROOT must not make the build write or delete there."""
    inst = tmp_path / "inst"
    (inst / "image" / "bin").mkdir(parents=True)
    (inst / "image" / "bin" / "f").write_text("image file")
    (inst / "build" / "mount").mkdir(parents=True)
    os.symlink(victim / "victim", inst / "build" / "mount" / "__ROOT")
    with pytest.raises(fsutil.LinkRefused):
        build_image("image", "build/mount/__ROOT", base=inst)
    assert unchanged(victim)
    # a built image whose temporary superblock name is a planted link
    os.unlink(inst / "build" / "mount" / "__ROOT")
    build_image("image", "build/mount/__ROOT", base=inst)
    os.symlink(victim / "victim.txt", inst / "build" / "mount" / "__ROOT" / ".tmp-superblock")
    (inst / "image" / "bin" / "f").write_text("changed")
    stats = build_image("image", "build/mount/__ROOT", base=inst)
    assert unchanged(victim)
    # the source: a folder swapped for a link is refused, a linked image/ too
    image = open_image("build/mount/__ROOT", stats.root_mac, base=inst)
    assert image.read("/bin/f") == b"changed"
    os.rename(inst / "image", inst / "image.real")
    os.symlink(victim / "victim", inst / "image")
    with pytest.raises(fsutil.LinkRefused):
        build_image("image", "build/mount/__ROOT", base=inst)


def test_image_reader_follows_no_link(tmp_path, victim):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_text("image file")
    stats = build_image(tmp_path / "src", tmp_path / "img")
    sb = tmp_path / "img" / "superblock"
    shutil.copy(sb, victim / "victim" / "sb")
    sb.unlink()
    os.symlink(victim / "victim" / "sb", sb)
    with pytest.raises(IntegrityError) as info:
        open_image(tmp_path / "img", stats.root_mac)
    assert "symbolic link" in str(info.value)
    os.symlink(tmp_path / "img", tmp_path / "img-link")
    with pytest.raises(IntegrityError):
        open_image(tmp_path / "img-link", stats.root_mac)


# ---- hostfs ----------------------------------------------------------------------------------

def test_hostfs_keeps_build_run_and_the_secret_out_of_reach(tmp_path):
    inst = tmp_path / "inst"
    for sub in ("build/lib", "run/mount/__ROOT", "image", "data"):
        (inst / sub).mkdir(parents=True)
    (inst / "secret").write_bytes(bytes(16))
    os.link(inst / "secret", inst / "data" / "hardlink")
    protected = [inst / "build", inst / "run", inst / "secret"]
    for source in (inst, tmp_path):          # the instance folder, or one above it
        fs = HostFs(source, 1, protected=protected)
        top = fs.root() if source == inst else fs.root().lookup("inst")
        names = {n for n, _, _ in top.readdir()}
        assert {"build", "run", "secret", "image"} <= names           # listed ...
        for name in ("build", "run", "secret"):                       # ... out of bounds
            with pytest.raises(SysError) as info:
                top.lookup(name)
            assert info.value.errno == errno.EACCES
            for call in (lambda: top.rename(name, top, "moved"), lambda: top.rmdir(name),
                         lambda: top.unlink(name)):
                with pytest.raises(SysError) as info:
                    call()
                assert info.value.errno == errno.EACCES
        with pytest.raises(SysError) as info:                         # nor replaced
            top.rename("image", top, "run")
        assert info.value.errno == errno.EACCES
        with pytest.raises(SysError) as info:                         # by no other name
            top.lookup("data").lookup("hardlink")
        assert info.value.errno == errno.EACCES
        with pytest.raises(SysError) as info:
            top.mkdir("run", 0o755)
        assert info.value.errno == errno.EEXIST
        fs.close()
    with pytest.raises(PermissionError):     # a hostfs inside run/ is not mounted at all
        HostFs(inst / "run" / "mount", 1, protected=protected)
    assert sorted(os.listdir(inst)) == ["build", "data", "image", "run", "secret"]


# ---- one key per mount ---------------------------------------------------------------------------------

def test_each_mount_has_its_own_layer_key(tmp_path):
    keys = {mount_key(KEY, t) for t in ("/", "/data", "/data2", "/data/x")}
    assert len(keys) == 4 and mount_key(KEY, "//data/") == mount_key(KEY, "/data")
    inst = tmp_path / "inst"
    fs = open_writable("run/mount/__ROOT", mount_key(KEY, "/"), base=inst)
    fs.create("/secret", 0o644)
    fs.close()
    shutil.copytree(inst / "run" / "mount" / "__ROOT", inst / "run" / "mount" / "data")
    with pytest.raises(IntegrityError) as info:
        open_writable("run/mount/data", mount_key(KEY, "/data"), name="./run/mount/data", base=inst)
    assert str(info.value) == ("./run/mount/data: the layer key does not match this layer (wrong "
                               "key, or the layer of another mount, enclave or signer?)")


# ---- sefs sources in Occlum.json -------------------------------------------------------------------------

def test_sefs_sources_stay_inside_the_instance(tmp_path):
    inst = tmp_path / "inst"
    inst.mkdir()
    os.symlink(tmp_path, inst / "ln")
    bad = {"/etc": "is an absolute path", "../x": 'must not contain ".."', "./": "instance folder itself",
           "build/data": "inside build/", "image/data": "inside image/",
           "run/mount/__ROOT/x": "overlaps the folder of the writable layer of /",
           "ln/data": "ln is a symbolic link", "": "is empty"}
    entries = "".join(f'{{"target": "/d{i}", "type": "sefs", "source": "{s}"}},\n'
                      for i, s in enumerate(bad))
    entries += '{"target": "/ok", "type": "sefs", "source": "./run/mount/data"},\n'
    entries += '{"target": "/tmpfs", "type": "sefs", "options": {"temporary": true}},\n'
    text = render_template(plain=True).replace('"mount": [\n', '"mount": [\n' + entries, 1)
    (inst / "Occlum.json").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(inst / "Occlum.json")
    problems = [p for p in info.value.problems if ".source:" in p]
    assert len(problems) == len(bad), info.value.problems
    lines = text.splitlines()
    for problem, (source, words) in zip(problems, bad.items()):
        line = int(problem.split(":")[1])
        assert f'"source": "{source}"' in lines[line - 1] and words in problem, problem


# ---- end to end: a guest plants a link through /host -----------------------------------------------------

def occlum(cwd, *args):
    return subprocess.run([sys.executable, "-m", "occlum_tasks.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True)


@pytest.mark.slow
def test_a_guest_cannot_redirect_the_host_through_a_planted_link(tmp_path, victim, compile_program):
    assert occlum(tmp_path, "new", "inst").returncode == 0
    inst = tmp_path / "inst"
    shutil.copy(compile_program("host_plant.c"), inst / "image" / "bin" / "host_plant")
    text = (inst / "Occlum.json").read_text()   # and a hostfs above the instance folder
    text = text.replace('"mount": [\n', '"mount": [\n{"target": "/up", "type": "hostfs", '
                                         '"source": ".."},\n', 1)
    (inst / "Occlum.json").write_text(text)
    (inst / "image" / "up").mkdir()
    proc = occlum(inst, "build")
    assert proc.returncode == 0, proc.stderr
    before = "none"
    for link, content in (("/host/run/mount/__ROOT/.tmp-superblock", "first"),
                          ("/up/inst/run/mount/__ROOT/.tmp-superblock", "second"),
                          ("/host/build/mount/__ROOT/.tmp-superblock", "third")):
        proc = occlum(inst, "run", "/bin/host_plant", link, victim / "victim.txt", "/root/note", content)
        assert (proc.returncode, proc.stdout) == (0, f"was: {before}\nplant: EACCES\nwrite: ok\n"), \
            proc.stdout + proc.stderr
        assert unchanged(victim)
        assert not (inst / "run" / "mount" / "__ROOT" / "superblock").is_symlink()
        before = content
    # the fsync'd file is there at the next run; the hostfs still works for the rest
    proc = occlum(inst, "run", "/bin/host_plant", "/host/image/planted", "/etc/passwd", "/root/note", "x")
    assert proc.stdout == "was: third\nplant: ok\nwrite: ok\n", proc.stdout + proc.stderr
    assert os.readlink(inst / "image" / "planted") == "/etc/passwd"
    # a link planted at build/mount/__ROOT: the next build writes and deletes nothing there;
    # it refuses the link (one line naming it) or replaces it (the link itself, by rename)
    os.unlink(inst / "image" / "planted")
    shutil.rmtree(inst / "build" / "mount" / "__ROOT")
    os.symlink(victim / "victim", inst / "build" / "mount" / "__ROOT")
    (inst / "image" / "bin" / "new").write_text("a change, so that the image step runs")
    proc = occlum(inst, "build")
    assert "Traceback" not in proc.stderr and unchanged(victim), proc.stderr
    if proc.returncode != 0:
        assert "build/mount/__ROOT: is a symbolic link" in proc.stderr, proc.stderr
    else:
        assert not (inst / "build" / "mount" / "__ROOT").is_symlink()
        assert occlum(inst, "run", "/bin/host_plant", "/host/x", "y", "/root/note", "z").returncode == 0
