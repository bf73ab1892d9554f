"""The build as a user drives it: `occlum new/init/build/print`, `doit build`, and the
rules the build keeps (reproducible, incremental, atomic, one-line errors)."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from occlum_tasks.image.keys import parse_mac
from occlum_tasks.image.reader import open_image

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def occlum(cwd, *args, env=None, check=True):
    full_env = dict(os.environ, **(env or {}))
    proc = subprocess.run([sys.executable, "-m", "occlum_tasks.cli", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"occlum {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def doit(cwd, *args):
    return subprocess.run([sys.executable, "-m", "doit", *args], cwd=cwd,
                          capture_output=True, text=True)


def ran(proc):
    """Steps the build ran (doit's `.  step` lines)."""
    return {line[3:].strip() for line in proc.stdout.splitlines() if line.startswith(".  ")}


@pytest.fixture(scope="module")
def hello(compile_program):
    return compile_program("hello_world.c")


@pytest.fixture()
def instance(tmp_path, hello):
    occlum(tmp_path, "new", "inst")
    inst = tmp_path / "inst"
    shutil.copy(hello, inst / "image" / "bin" / "hello_world")
    return inst


def set_env_default(inst, values):
    """Rewrite env.default in Occlum.json (keeps the rest as the template wrote it)."""
    text = (inst / "Occlum.json").read_text()
    text = re.sub(r'("default"\s*:\s*)\[[^\]]*\]', lambda m: m.group(1) + json.dumps(values),
                  text, count=1)
    (inst / "Occlum.json").write_text(text)


def test_new_build_print(instance):
    proc = occlum(instance, "build")
    assert ran(proc) == {"config", "initfs", "image", "sysconf", "runtime", "sign"}
    assert "Built the Occlum image and enclave successfully" in proc.stdout
    assert occlum(instance, "status").stdout.strip() == "built"
    mrenclave = occlum(instance, "print", "mrenclave").stdout.strip()
    mrsigner = occlum(instance, "print", "mrsigner").stdout.strip()
    assert HEX64.match(mrenclave) and HEX64.match(mrsigner) and mrenclave != mrsigner
    assert (instance / "build" / "lib" / "enclave.sigstruct").stat().st_size == 1808
    # the image really holds the binary, verified against the root MAC
    root_mac = parse_mac((instance / "build/mount/.ROOT_MAC").read_text())
    img = open_image(instance / "build/mount/__ROOT", root_mac, name="build/mount/__ROOT")
    img.verify_all()
    assert img.read("/bin/hello_world") == (instance / "image/bin/hello_world").read_bytes()
    assert img.read("/etc/hosts") == b"127.0.0.1   localhost\n"


def test_second_build_is_a_no_op(instance):
    occlum(instance, "build")
    proc = occlum(instance, "build")
    assert ran(proc) == set()
    assert "Nothing to do" in proc.stdout
    forced = occlum(instance, "build", "-f")
    assert ran(forced) == {"config", "initfs", "image", "sysconf", "runtime", "sign"}


def test_env_change_reruns_config_sysconf_sign_not_image(instance):
    occlum(instance, "build")
    before = occlum(instance, "print", "mrenclave").stdout
    set_env_default(instance, ["OCCLUM=yes", "GREETING=hi"])
    proc = occlum(instance, "build")
    assert ran(proc) == {"config", "sysconf", "sign"}
    assert occlum(instance, "print", "mrenclave").stdout != before
    sysconf = json.loads((instance / "build/.Occlum_sys.json").read_text())
    assert "GREETING=hi" in sysconf["env"]["default"]


def test_one_file_changed_reencodes_only_that_file(instance):
    (instance / "image" / "etc" / "motd").write_text("one\n")
    occlum(instance, "build")
    before = occlum(instance, "print", "mrenclave").stdout
    (instance / "image" / "etc" / "motd").write_text("two\n")
    proc = occlum(instance, "build")
    assert ran(proc) == {"image", "sysconf", "sign"}
    assert re.search(r"image: 1 of \d+ files encoded", proc.stderr), proc.stderr
    assert occlum(instance, "print", "mrenclave").stdout != before


def test_mode_and_empty_dir_changes_are_seen(instance):
    occlum(instance, "build")
    (instance / "image" / "opt").mkdir()
    assert ran(occlum(instance, "build")) >= {"image", "sign"}
    os.chmod(instance / "image/bin/hello_world", 0o700)
    assert "image" in ran(occlum(instance, "build"))


def test_reproducible_across_folders(tmp_path, hello):
    prints = []
    for name in ("a", "deeper/b"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        occlum(tmp_path, "new", name)
        inst = tmp_path / name
        shutil.copy(hello, inst / "image/bin/hello_world")
        occlum(inst, "build")
        prints.append(occlum(inst, "print", "mrenclave").stdout)
    assert prints[0] == prints[1]
    for rel in ("build/lib/enclave.sigstruct", "build/.Occlum_sys.json.protected",
                "build/mount/.ROOT_MAC", "build/lib/runtime.manifest"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "deeper/b" / rel).read_bytes(), rel


def test_doit_build_is_the_same_graph(instance):
    proc = doit(instance, "build")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Built the Occlum image and enclave successfully" in proc.stdout
    proc = occlum(instance, "build")
    assert ran(proc) == set()
    listing = doit(instance, "list").stdout
    for step in ("config", "initfs", "image", "sysconf", "runtime", "sign", "build"):
        assert re.search(rf"^{step}\s+\S", listing, re.M), listing
    proc = doit(instance, "clean")
    assert proc.returncode == 0, proc.stderr
    assert not (instance / "build/lib/enclave.sigstruct").exists()
    assert not (instance / "build/mount/__ROOT").exists()


def test_broken_config_gives_one_line_per_problem(instance):
    text = (instance / "Occlum.json").read_text().replace('"300MB"', '"256M"', 1)
    (instance / "Occlum.json").write_text(text)
    proc = occlum(instance, "build", check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    line = next(ln for ln in proc.stderr.splitlines() if "user_space_size" in ln)
    assert re.match(r'^Occlum\.json:\d+: resource_limits\.user_space_size: "256M" is not a '
                    r'size; use B, KB, MB, GB or TB \(e\.g\. "256MB"\)$', line), line
    # nothing downstream ran, nothing half-written is left as current
    assert not (instance / "build/Occlum.resolved.json").exists()
    assert not (instance / "build/lib/enclave.sigstruct").exists()


def test_init_twice_and_new_on_existing_path_fail(tmp_path):
    occlum(tmp_path, "init")
    before = (tmp_path / "Occlum.json").read_text()
    proc = occlum(tmp_path, "init", check=False)
    assert proc.returncode != 0 and "already an Occlum instance" in proc.stderr
    assert (tmp_path / "Occlum.json").read_text() == before
    (tmp_path / "x").mkdir()
    proc = occlum(tmp_path, "new", "x", check=False)
    assert proc.returncode != 0 and "already exists" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_init_lays_out_the_instance(tmp_path):
    occlum(tmp_path, "init")
    for sub in ("bin", "lib", "lib64", "root", "host", "tmp", "dev", "proc", "etc", "sbin"):
        assert (tmp_path / "image" / sub).is_dir(), sub
    assert (tmp_path / "image/lib/ld-musl-x86_64.so.1").is_file()
    assert not (tmp_path / "image/lib/ld-musl-x86_64.so.1").is_symlink()
    assert (tmp_path / "Occlum.json").stat().st_mode & 0o777 == 0o644
    assert occlum(tmp_path, "status").stdout.strip() == "initialized"
    assert (tmp_path / "dodo.py").is_file() and (tmp_path / "doit.cfg").is_file()


def test_hw_mode_refused(instance):
    proc = occlum(instance, "build", "--sgx-mode", "HW", check=False)
    assert proc.returncode != 0 and "SIM" in proc.stderr
    proc = occlum(instance, "build", env={"SGX_MODE": "HW"}, check=False)
    assert proc.returncode != 0 and "SIM" in proc.stderr
    assert not (instance / "build/lib/enclave.sigstruct").exists()
    proc = doit(instance, "build", "sgx_mode=HW")
    assert proc.returncode != 0 and "SIM" in proc.stderr and "Traceback" not in proc.stderr


def test_not_an_instance(tmp_path):
    for args in (("build",), ("status",), ("print", "mrenclave")):
        proc = occlum(tmp_path, *args, check=False)
        assert proc.returncode != 0 and "not an Occlum instance" in proc.stderr, args


def test_gen_image_key(tmp_path):
    occlum(tmp_path, "gen-image-key", "k")
    text = (tmp_path / "k").read_text().strip()
    assert re.match(r"^[0-9a-f]{2}(-[0-9a-f]{2}){15}$", text) and len(text) == 47
    proc = occlum(tmp_path, "gen-image-key", "k", check=False)
    assert proc.returncode != 0 and (tmp_path / "k").read_text().strip() == text


def test_encrypted_image(instance, tmp_path):
    occlum(tmp_path, "gen-image-key", "key")
    occlum(instance, "build")
    plain = occlum(instance, "print", "mrenclave").stdout
    proc = occlum(instance, "build", "--image-key", tmp_path / "key")
    assert "encrypted" in proc.stderr
    assert occlum(instance, "print", "mrenclave").stdout != plain
    from occlum_tasks.image.keys import parse_image_key
    key = parse_image_key((tmp_path / "key").read_text())
    root_mac = parse_mac((instance / "build/mount/.ROOT_MAC").read_text())
    img = open_image(instance / "build/mount/__ROOT", root_mac, key=key)
    binary = (instance / "image/bin/hello_world").read_bytes()
    assert img.read("/bin/hello_world") == binary
    # the plaintext appears nowhere in the encrypted image
    blobs = b"".join(p.read_bytes() for p in (instance / "build/mount/__ROOT").rglob("*")
                     if p.is_file())
    assert binary[64:4096] not in blobs
    sysconf = json.loads((instance / "build/.Occlum_sys.json").read_text())
    assert sysconf["image"]["encrypted"] is True


def test_buildin_image_key_goes_into_initfs(instance, tmp_path):
    occlum(tmp_path, "gen-image-key", "key")
    occlum(instance, "build", "--image-key", tmp_path / "key", "--buildin-image-key")
    root_mac = parse_mac((instance / "build/initfs/.ROOT_MAC").read_text())
    initfs = open_image(instance / "build/initfs/__ROOT", root_mac)
    assert initfs.read("/etc/image_key").decode().strip() == (tmp_path / "key").read_text().strip()
    proc = occlum(instance, "build", "--buildin-image-key", check=False)
    assert proc.returncode != 0 and "--image-key" in proc.stderr


def new_key(path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=3, key_size=3072)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    pub = path.with_suffix(".pub.pem")
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return path, pub


def test_sign_key_changes_mrsigner_and_moves_run_aside(instance, tmp_path):
    occlum(instance, "build")
    debug_signer = occlum(instance, "print", "mrsigner").stdout
    (instance / "run/mount/__ROOT").mkdir(parents=True, exist_ok=True)
    (instance / "run/mount/__ROOT/data").write_text("kept")
    occlum(instance, "build", "-f")  # same signer: the writable layer stays
    assert (instance / "run/mount/__ROOT/data").read_text() == "kept"
    key, _ = new_key(tmp_path / "signer.pem")
    proc = occlum(instance, "build", "--sign-key", key)
    assert occlum(instance, "print", "mrsigner").stdout != debug_signer
    moved = list(instance.glob("run.old-*"))
    assert len(moved) == 1 and (moved[0] / "mount/__ROOT/data").read_text() == "kept"
    assert "moved it to" in proc.stderr


def test_production_build_needs_own_key(instance, tmp_path):
    text = (instance / "Occlum.json").read_text()
    text = re.sub(r'"debuggable"\s*:\s*true', '"debuggable": false', text)
    (instance / "Occlum.json").write_text(text)
    proc = occlum(instance, "build", check=False)
    assert proc.returncode != 0 and "debug key" in proc.stderr and "--sign-key" in proc.stderr
    assert "Traceback" not in proc.stderr
    key, _ = new_key(tmp_path / "prod.pem")
    occlum(instance, "build", "--sign-key", key)
    from occlum_tasks.sgx.sigstruct import parse_sigstruct
    info = parse_sigstruct((instance / "build/lib/enclave.sigstruct").read_bytes())
    assert not info["attributes"] & 0x2  # DEBUG bit clear


def test_sign_tool(instance, tmp_path):
    key, pub = new_key(tmp_path / "hsm.pem")
    tool = tmp_path / "hsm-sign"
    tool.write_text(f"""#!{sys.executable}
import sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
key = serialization.load_pem_private_key(open({str(key)!r}, 'rb').read(), None)
msg = open(sys.argv[1], 'rb').read()
assert len(msg) == 256
open(sys.argv[2], 'wb').write(key.sign(msg, padding.PKCS1v15(), hashes.SHA256()))
""")
    tool.chmod(0o755)
    occlum(instance, "build", "--sign-key", pub, "--sign-tool", tool)
    with_tool = occlum(instance, "print", "mrsigner").stdout
    occlum(instance, "build", "--sign-key", key)
    assert occlum(instance, "print", "mrsigner").stdout == with_tool
    # a tool that signs with another key is caught
    other, _ = new_key(tmp_path / "other.pem")
    tool.write_text(tool.read_text().replace(str(key), str(other)))
    proc = occlum(instance, "build", "--sign-key", pub, "--sign-tool", tool, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0, proc.stderr


def test_syntax_error_is_one_line(instance):
    (instance / "Occlum.json").write_text("{")
    quiet = occlum(instance, "build", check=False)
    assert quiet.returncode != 0 and "Traceback" not in quiet.stderr
    assert re.match(r"^Occlum\.json:\d+: syntax error", quiet.stderr), quiet.stderr


def test_help_is_complete():
    proc = occlum(".", "--help")
    for cmd in ("init", "new", "build", "run", "status", "gen-image-key", "print", "start",
                "exec", "stop", "package", "mount", "gdb"):
        assert cmd in proc.stdout, cmd
    build_help = occlum(".", "build", "--help").stdout
    for flag in ("--sign-key", "--sign-tool", "--image-key", "--buildin-image-key",
                 "--sgx-mode", "--force"):
        assert flag in build_help, flag


def test_version_bump_moves_the_writable_layer_aside(instance):
    occlum(instance, "build")
    (instance / "run/mount/__ROOT").mkdir(parents=True, exist_ok=True)
    text = (instance / "Occlum.json").read_text()
    (instance / "Occlum.json").write_text(
        re.sub(r'"version_number"\s*:\s*0', '"version_number": 1', text))
    proc = occlum(instance, "build")
    # the layer's key derives from ISVSVN too: the new enclave could not read it
    assert "version_number" in proc.stderr and len(list(instance.glob("run.old-*"))) == 1
    assert "isvsvn 1" in (instance / "run/.owner").read_text()


def test_a_layer_made_by_a_run_is_kept_by_the_next_build(instance):
    occlum(instance, "build")
    shutil.rmtree(instance / "run")
    assert occlum(instance, "run", "/bin/hello_world").stdout == "Hello World\n"
    assert (instance / "run/.owner").is_file() and (instance / "run/mount/__ROOT").is_dir()
    proc = occlum(instance, "build", "-f")
    assert "moved it to" not in proc.stderr and not list(instance.glob("run.old-*"))
    assert occlum(instance, "run", "/bin/hello_world").returncode == 0


def test_force_repairs_a_damaged_image(instance):
    occlum(instance, "build")
    node = max((p for p in (instance / "build/mount/__ROOT").iterdir() if p.is_file()),
               key=lambda p: p.stat().st_size)
    data = bytearray(node.read_bytes())
    data[len(data) // 2] ^= 1
    node.write_bytes(bytes(data))
    root_mac = parse_mac((instance / "build/mount/.ROOT_MAC").read_text())
    with pytest.raises(Exception):
        open_image(instance / "build/mount/__ROOT", root_mac).verify_all()
    occlum(instance, "build", "-f")
    open_image(instance / "build/mount/__ROOT", root_mac).verify_all()


def test_a_file_replaced_with_its_mtime_kept_is_rebuilt(instance):
    target = instance / "image/etc/motd"
    target.write_text("one\n")
    occlum(instance, "build")
    st = target.stat()
    replacement = instance / "image/etc/.motd.new"
    replacement.write_text("two\n")  # same size
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(replacement, target)  # as rsync or `cp -p` + mv do
    assert "image" in ran(occlum(instance, "build"))
    root_mac = parse_mac((instance / "build/mount/.ROOT_MAC").read_text())
    assert open_image(instance / "build/mount/__ROOT", root_mac).read("/etc/motd") == b"two\n"


def test_a_built_in_image_key_is_readable_by_the_owner_only(instance, tmp_path):
    occlum(tmp_path, "gen-image-key", "key")
    occlum(instance, "build", "--image-key", tmp_path / "key", "--buildin-image-key")
    key_text = (tmp_path / "key").read_text().strip().encode()
    holders = [p for p in (instance / "build").rglob("*")
               if p.is_file() and key_text in p.read_bytes()]
    assert holders, "the built-in key must be somewhere in build/"
    for path in holders:
        assert path.stat().st_mode & 0o077 == 0, path


# -- a build completes or leaves the previous one in place (issue 7, section 2) ----------

KILL_POINTS = ([f"{when}:{step}" for step in ("config", "initfs", "image", "sysconf",
                                                "runtime", "sign") for when in ("before", "after")]
               + ["inside:initfs", "inside:image", "inside:sysconf", "inside:sign",
                  "before:build", "commit:begin", "commit:trees", "commit:files",
                  "commit:layer", "after:build", "db:dump"])
BUILT_FILES = ("build/lib/enclave.sigstruct", "build/lib/enclave.layout", "build/lib/runtime.manifest",
               "build/.Occlum_sys.json", "build/Occlum.resolved.json",
               "build/mount/.ROOT_MAC", "build/initfs/.ROOT_MAC")


def set_inputs(inst, which):
    """Inputs A or B: B differs in every input a user edits (env, a limit, an image file)."""
    set_env_default(inst, ["OCCLUM=yes", f"GREETING={which}"])
    text = (inst / "Occlum.json").read_text()
    threads = 32 if which == "A" else 33
    text = re.sub(r'("max_num_of_threads"\s*:\s*)\d+', rf"\g<1>{threads}", text)
    (inst / "Occlum.json").write_text(text)
    (inst / "image/etc/motd").write_text(f"motd {which}\n")


def built(inst):
    return {rel: (inst / rel).read_bytes() for rel in BUILT_FILES}


@pytest.mark.slow
def test_no_kill_leaves_a_stale_output_that_a_later_build_accepts(tmp_path, hello):
    """Kill `occlum build` at every step boundary, between a step's outputs, inside the
    commit and while doit writes its database; the instance then runs the previous build
    or says it is incomplete, never anything else; restore the inputs and build again:
    what is signed is exactly a clean build of them (same bytes)."""
    made = {}

    def clean_build(which, like):
        """A from-scratch build of inputs `which` with the runtime that built `like`
        (the LibOS may be edited while this test runs: its manifest is in the MRENCLAVE)."""
        manifest = like["build/lib/runtime.manifest"]
        for attempt in range(3):
            if (which, manifest) in made:
                return made[which, manifest]
            ref = tmp_path / f"ref{len(made)}-{attempt}"
            occlum(tmp_path, "new", ref.name)
            shutil.copy(hello, ref / "image/bin/hello_world")
            set_inputs(ref, which)
            occlum(ref, "build")
            made[which, ref.joinpath("build/lib/runtime.manifest").read_bytes()] = built(ref)
        raise AssertionError("the runtime keeps changing")

    occlum(tmp_path, "new", "inst")
    inst = tmp_path / "inst"
    shutil.copy(hello, inst / "image/bin/hello_world")
    set_inputs(inst, "A")
    occlum(inst, "build")
    assert built(inst) == clean_build("A", built(inst)) != clean_build("B", built(inst))
    for i, point in enumerate(KILL_POINTS):
        set_inputs(inst, "B")
        # -f: every step runs, so that every point is reached
        proc = occlum(inst, "build", "-f", env={"OCCLUM_TEST_KILL_AT": point}, check=False)
        assert proc.returncode == -9, (point, proc.returncode, proc.stderr)
        assert "successfully" not in proc.stdout
        runs = occlum(inst, "run", "/bin/hello_world", check=False)
        status = occlum(inst, "status").stdout
        if point.startswith("commit:"):
            # a commit cut short: the committed files may be two builds' mixture
            assert runs.returncode == 1 and "the build is incomplete" in runs.stderr, (point, runs)
            assert "run `occlum build`" in runs.stderr and status.startswith("incomplete")
        elif point in ("after:build", "db:dump"):
            # the build was committed; doit's database was not (or only cut short)
            assert runs.returncode == 0 and status.strip() == "built", (point, status)
            assert built(inst) == clean_build("B", built(inst)), point
        else:
            # the previous build, whole: A is signed and runs
            assert runs.returncode == 0 and runs.stdout == "Hello World\n", (point, runs)
            assert built(inst) == clean_build("A", built(inst)), point
            assert status.startswith("built (the last build did not complete"), (point, status)
        # alternately restore the inputs or keep the new ones: both must come out exact
        which = "AB"[i % 2]
        set_inputs(inst, which)
        proc = occlum(inst, "build")
        assert "successfully" in proc.stdout, (point, proc.stdout, proc.stderr)
        assert built(inst) == clean_build(which, built(inst)), (point, which)
        assert occlum(inst, "status").stdout.strip() == "built"
        if which == "B":
            set_inputs(inst, "A")
            occlum(inst, "build")
    assert occlum(inst, "run", "/bin/hello_world").stdout == "Hello World\n"


def test_doit_clean_then_doit_build_rebuilds_what_was_removed(instance):
    assert doit(instance, "build").returncode == 0
    assert doit(instance, "clean").returncode == 0
    assert occlum(instance, "status").stdout.strip() == "initialized"
    assert not list((instance / "build").rglob("__ROOT"))
    proc = doit(instance, "build")
    assert proc.returncode == 0 and "successfully" in proc.stdout, proc.stdout + proc.stderr
    assert {"initfs", "image", "sign"} <= ran(proc)
    assert occlum(instance, "run", "/bin/hello_world").stdout == "Hello World\n"
    # a staged output removed by hand is made again too
    shutil.rmtree(instance / "build/.stage/initfs/__ROOT")
    assert "initfs" in ran(occlum(instance, "build"))


def test_a_failed_build_leaves_the_previous_build_in_place(instance):
    occlum(instance, "build")
    before = built(instance)
    set_env_default(instance, ["OCCLUM=yes", "GREETING=new"])
    text = (instance / "Occlum.json").read_text()
    (instance / "Occlum.json").write_text(re.sub(r'"debuggable"\s*:\s*true', '"debuggable": false', text))
    proc = occlum(instance, "build", check=False)
    assert proc.returncode == 1 and "debug key" in proc.stderr and "successfully" not in proc.stdout
    assert ran(proc) >= {"config", "sysconf", "sign"}      # they ran, and staged only
    assert built(instance) == before
    assert occlum(instance, "status").stdout.startswith("built (the last build did not complete")
    assert occlum(instance, "run", "/bin/hello_world").stdout == "Hello World\n"


def test_an_interrupted_commit_is_incomplete_not_tampered(instance):
    occlum(instance, "build")
    set_env_default(instance, ["OCCLUM=yes", "GREETING=new"])
    proc = occlum(instance, "build", env={"OCCLUM_TEST_KILL_AT": "commit:files"}, check=False)
    assert proc.returncode == -9
    runs = occlum(instance, "run", "/bin/hello_world", check=False)
    assert runs.returncode == 1 and runs.stdout == ""
    assert runs.stderr == ("occlum run: the build is incomplete: a build was interrupted while "
                           "it put its outputs in place (build/.committing); run `occlum build`\n")
    assert occlum(instance, "status").stdout.startswith("incomplete")
    # doit's database was not saved either: the steps run again (their outputs are not
    # those it recorded), then the commit
    assert "successfully" in occlum(instance, "build").stdout
    assert occlum(instance, "run", "/bin/hello_world").returncode == 0
    assert occlum(instance, "status").stdout.strip() == "built"


def test_ctrl_c_is_not_success(instance):
    occlum(instance, "build")
    set_env_default(instance, ["OCCLUM=yes", "GREETING=new"])
    for tool in ("occlum", "doit"):
        env = {"OCCLUM_TEST_KILL_AT": "inside:sign", "OCCLUM_TEST_KILL_SIGNAL": "INT"}
        if tool == "occlum":
            proc = occlum(instance, "build", env=env, check=False)
            assert proc.returncode == 130
        else:
            proc = subprocess.run([sys.executable, "-m", "doit", "build"], cwd=instance,
                                  capture_output=True, text=True, env=dict(os.environ, **env))
            assert proc.returncode != 0
            set_env_default(instance, ["OCCLUM=yes", "GREETING=newer"])
        assert "successfully" not in proc.stdout and "Nothing to do" not in proc.stdout, proc.stdout
        assert occlum(instance, "status").stdout.startswith("built (the last build did not")


def test_the_signer_coming_back_brings_its_writable_layer_back(tmp_path, compile_program):
    occlum(tmp_path, "new", "inst")
    inst = tmp_path / "inst"
    shutil.copy(compile_program("fs_persist.c"), inst / "image/bin/fs_persist")
    other, _ = new_key(tmp_path / "other.pem")

    def run(*args):
        return occlum(inst, "run", "/bin/fs_persist", *args, check=False).returncode

    occlum(inst, "build")
    assert run("write", "/root/note", "debug signer") == 0
    proc = occlum(inst, "build", "--sign-key", other)
    assert "the signer changed" in proc.stderr and "moved it to" in proc.stderr
    assert run("absent", "/root/note") == 0 and run("write", "/root/note", "other signer") == 0
    proc = occlum(inst, "build")
    assert "brought" in proc.stderr and "back as run/" in proc.stderr, proc.stderr
    assert run("read", "/root/note", "debug signer") == 0
    assert len(list(inst.glob("run.old-*"))) == 1       # the other signer's, kept
    occlum(inst, "build", "--sign-key", other)
    assert run("read", "/root/note", "other signer") == 0
    occlum(inst, "build")
    assert run("read", "/root/note", "debug signer") == 0


def test_a_layer_written_before_per_mount_keys_is_moved_aside_not_refused(tmp_path, compile_program):
    """A run/ whose .owner predates the per-mount layer key (no `layer-key` field) cannot
    be read by this version: the build moves it aside, says why, and runs start afresh."""
    occlum(tmp_path, "new", "inst")
    inst = tmp_path / "inst"
    shutil.copy(compile_program("fs_persist.c"), inst / "image/bin/fs_persist")
    occlum(inst, "build")
    assert occlum(inst, "run", "/bin/fs_persist", "write", "/root/note", "x", check=False).returncode == 0
    owner = inst / "run/.owner"
    line = owner.read_text()
    assert " layer-key per-mount\n" in line
    owner.write_text(line.replace(" layer-key per-mount", ""))     # as an earlier occlum-py wrote it
    proc = occlum(inst, "build")
    assert "key derivation" in proc.stderr and "earlier occlum-py" in proc.stderr, proc.stderr
    moved = list(inst.glob("run.old-*"))
    assert len(moved) == 1 and (moved[0] / "mount/__ROOT").is_dir()
    assert occlum(inst, "run", "/bin/fs_persist", "absent", "/root/note", check=False).returncode == 0


def test_layers_moved_aside_in_one_second_get_their_own_names(tmp_path, monkeypatch):
    from occlum_tasks.steps import commit
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(commit.time, "strftime", lambda fmt: "20260101-000000")
    names = []
    for i in range(3):
        (tmp_path / "run/mount/__ROOT").mkdir(parents=True)
        (tmp_path / "run/mount/__ROOT/data").write_text(str(i))
        names.append(commit._move_aside().name)
    assert names == ["run.old-20260101-000000", "run.old-20260101-000000-2",
                     "run.old-20260101-000000-3"]
    assert [(tmp_path / n / "mount/__ROOT/data").read_text() for n in names] == ["0", "1", "2"]
    assert [p.name for p in commit._old_layers()] == names[::-1]   # newest first


def test_a_build_is_not_put_in_place_under_a_running_enclave(instance):
    from occlum_tasks.instance_lock import hold
    occlum(instance, "build")
    before = built(instance)
    set_env_default(instance, ["OCCLUM=yes", "GREETING=new"])
    with hold(instance):        # what `occlum run` holds for an enclave's life
        proc = occlum(instance, "build", check=False)
    assert proc.returncode == 1 and "successfully" not in proc.stdout
    assert f"an enclave runs on this instance (pid {os.getpid()})" in proc.stderr, proc.stderr
    assert built(instance) == before
    assert "successfully" in occlum(instance, "build").stdout and built(instance) != before
