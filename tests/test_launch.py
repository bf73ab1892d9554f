"""`occlum run`'s verified launch (occlum_tasks/launch.py, sgx/einit.py) and the
emulated platform secret and EGETKEY (sgx/keys.py).

Instances are built with the CLI in a subprocess, as a user would; the launch is then
prepared in-process (prepare_launch) so that many tampered variants stay fast."""
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from occlum_tasks.image.keys import read_image_key_file
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from occlum_tasks import launch as L
from occlum_tasks.errors import IntegrityError, OcclumError, SignError
from occlum_tasks.image.keys import generate_image_key, parse_image_key
from occlum_tasks.runtime_manifest import PACKAGE_DIR, runtime_roots
from occlum_tasks.sgx import keys as K
from occlum_tasks.sgx.einit import EnclaveIdentity

PROGRAM = b"\x7fELF not really a program, launch checks do not look inside it\n" * 100
HOST_ENV = {"EXAMPLE": "from-host", "FOO": "host-foo", "SECRET": "must-not-pass",
            "PATH": "/usr/bin"}
# Build products that launch does not trust, and why (docs/enclave-formats.md, "Launch").
BUILD_TIME_ONLY = {
    "build/.doit.db",                # doit's dependency state
    "build/Occlum.resolved.json",    # sysconf's input; the measured copy is in the protected config
    "build/.Occlum_sys.json",        # readable copy of the protected config's body
}
# the image writer's caches; the steps' staged outputs (the commit links them in place)
BUILD_TIME_ONLY_DIRS = ("build/.cache/", "build/.stage/")


def occlum(cwd, *args, env=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "occlum_tasks.cli", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})))
    if check and proc.returncode != 0:
        raise AssertionError(f"occlum {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def new_instance(folder: Path, name="inst") -> Path:
    occlum(folder, "new", name)
    inst = folder / name
    (inst / "image" / "bin" / "hello_world").write_bytes(PROGRAM)
    for name, target in (("link", "hello_world"), ("abs", "/bin/hello_world"),
                         ("loop", "loop"), ("up", "../etc")):
        os.symlink(target, inst / "image" / "bin" / name)
    conf = inst / "Occlum.json"
    text = conf.read_text()
    text = text.replace('"OCCLUM=yes"', '"OCCLUM=yes", "FOO=default", "BAR=kept"', 1)
    text = text.replace('"EXAMPLE"', '"EXAMPLE", "FOO", "ABSENT"', 1)
    conf.write_text(text)
    return inst


@pytest.fixture(autouse=True)
def secret_file(tmp_path, monkeypatch):
    """Every test gets its own platform secret; the user's real one is never touched."""
    path = tmp_path / "platform" / "secret"
    monkeypatch.setenv(K.SECRET_FILE_ENV, str(path))
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    inst = new_instance(tmp_path_factory.mktemp("launch"))
    occlum(inst, "build")
    return inst


@pytest.fixture()
def inst(built, tmp_path):
    """A private copy of the built instance, free to tamper with."""
    copy = tmp_path / "copy"
    shutil.copytree(built, copy, symlinks=True)
    return copy


@pytest.fixture(scope="module")
def other_key(tmp_path_factory):
    key = rsa.generate_private_key(public_exponent=3, key_size=3072)
    path = tmp_path_factory.mktemp("keys") / "other.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return key, path


def prepare(inst, path="/bin/hello_world", args=(), env=HOST_ENV, **kw):
    # in-process: the runtime is checked, but pytest's own imports are left alone
    # (the measured loader is tested through `occlum run` in tests/test_runtime_loader.py)
    return L.prepare_launch(inst, path, list(args), env, **dict({"load_runtime": False}, **kw))


def refused(inst, **kw) -> str:
    with pytest.raises(OcclumError) as info:
        prepare(inst, **kw)
    msg = str(info.value)
    assert "\n" not in msg, msg
    return msg


# --- a clean launch --------------------------------------------------------------------

def test_clean_launch_returns_what_the_libos_needs(built, secret_file):
    launch = prepare(built, args=["-x", "A=B", "--", ""])
    assert launch.argv == ["hello_world", "-x", "A=B", "--", ""]
    # defaults in order; FOO overridden from the host in place; EXAMPLE passed in because
    # it is named; ABSENT named but not set; SECRET and PATH not named: dropped
    assert launch.envp == ["OCCLUM=yes", "FOO=host-foo", "BAR=kept", "EXAMPLE=from-host"]
    assert prepare(built, env={}).envp == ["OCCLUM=yes", "FOO=default", "BAR=kept"]
    ident = launch.identity
    sigstruct = (built / "build/lib/enclave.sigstruct").read_bytes()
    assert ident.mrenclave == sigstruct[960:992]
    assert ident.mrenclave.hex() == occlum(built, "print", "mrenclave").stdout.strip()
    assert ident.mrsigner.hex() == occlum(built, "print", "mrsigner").stdout.strip()
    assert ident.attributes == 0x7 and ident.xfrm == 0x3   # INIT, DEBUG, MODE64BIT
    assert (ident.isvprodid, ident.isvsvn, ident.debug, ident.kss) == (0, 0, True, False)
    assert launch.config["entry_points"] == ["/bin"]
    assert launch.image.read("/bin/hello_world") == PROGRAM
    assert launch.image_verified == "all"
    assert launch.initfs.listdir("/etc") == ["image_config.json"]
    assert launch.writable_layer_dir == built / "run" / "mount" / "__ROOT"
    assert launch.writable_layer_key == K.writable_layer_key(secret_file.read_bytes(), ident)
    assert len(launch.writable_layer_key) == 16
    limits = launch.resource_limits
    assert limits["user_space_size"] == 300 << 20 and limits["max_num_of_threads"] == 32
    assert limits["default_stack_size"] == 4 << 20
    assert set(launch.timings) == {"read", "einit", "runtime", "config", "image", "program"}


def test_verify_modes(built):
    assert prepare(built, verify_image="root").image_verified == "root"
    assert prepare(built, verify_image="all").image_verified == "all"
    with pytest.raises(ValueError):
        prepare(built, verify_image="none")


def test_launch_path_imports_neither_doit_nor_jsonschema(built, secret_file):
    code = ("import os, sys; from occlum_tasks.launch import prepare_launch; "
            f"prepare_launch({str(built)!r}, '/bin/hello_world', [], os.environ); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('doit', 'jsonschema')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, **{K.SECRET_FILE_ENV: str(secret_file)}))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_boot_hands_the_verified_launch_to_the_libos(built, monkeypatch):
    seen = {}

    def run_program(mounts, path, argv, envp, **kw):
        # the verified image, through the mounts the LibOS gets (unionfs at /)
        seen.update(data=mounts.read_file(path), link=mounts.read_file("/bin/link"), path=path,
                    argv=argv, envp=envp, **kw)
        return 42

    from occlum_tasks.libos import enclave
    monkeypatch.setattr(enclave, "run_program", run_program)
    assert L.run_in_enclave("/bin/hello_world", ["a b"], instance_dir=built,
                            host_env=HOST_ENV, load_runtime=False) == 42
    assert seen["data"] == seen["link"] == PROGRAM
    assert seen["argv"] == ["hello_world", "a b"] and seen["envp"][0] == "OCCLUM=yes"
    assert seen["user_space_size"] == 300 << 20 and seen["max_num_of_threads"] == 32
    assert seen["default_stack_size"] == 4 << 20 and seen["default_heap_size"] == 32 << 20
    assert seen["log_level"] is None                    # debuggable: OCCLUM_LOG_LEVEL decides


def test_occlum_run_runs_the_program_in_the_libos(tmp_path, compile_program):
    inst = new_instance(tmp_path)
    shutil.copy(compile_program("libos_args.c"), inst / "image/bin/libos_args")
    conf = inst / "Occlum.json"
    conf.write_text(conf.read_text().replace('"OCCLUM=yes"', '"OCCLUM=yes", "OCCLUM_TEST=yes"', 1))
    occlum(inst, "build")
    proc = occlum(inst, "run", "/bin/libos_args", "a", "b c", "X=1", env=HOST_ENV, check=False)
    assert proc.returncode == 0, proc.stderr
    for line in ("argv[0]=libos_args", "argv[1]=a", "argv[2]=b c", "argv[3]=X=1",
                 "env OCCLUM_TEST=yes", "env FOO=host-foo", "env EXAMPLE=from-host"):
        assert line in proc.stdout.splitlines(), proc.stdout
    assert "SECRET" not in proc.stdout and "PATH=" not in proc.stdout
    bad = occlum(inst, "run", "/bin/hello_world", check=False)     # not an ELF: 127
    assert bad.returncode == 127 and "hello_world" in bad.stderr


def test_release_enclaves_log_errors_at_most():
    assert L.log_level({"debuggable": True}, {"OCCLUM_LOG_LEVEL": "trace"}) is None
    assert L.log_level({"debuggable": False}, {"OCCLUM_LOG_LEVEL": "trace"}) == "error"
    assert L.log_level({"debuggable": False}, {}) == "off"
    assert L.log_level({"debuggable": True, "disable_log": True}, {"OCCLUM_LOG_LEVEL": "info"}) == "off"


def test_symbolic_links_resolve_inside_the_image(built):
    image = prepare(built).image
    for path in ("/bin/link", "/bin/abs", "/bin/./link", "/bin/../bin/link"):
        assert L.resolve_in_image(image, path) == "/bin/hello_world"
    assert L.resolve_in_image(image, "/bin/up/hosts") == "/etc/hosts"
    assert L.resolve_in_image(image, "/../../etc/hosts") == "/etc/hosts"
    with pytest.raises(OSError, match="symbolic links"):
        L.resolve_in_image(image, "/bin/loop")
    with pytest.raises(FileNotFoundError):
        L.resolve_in_image(image, "/bin/missing")


# --- the program path ----------------------------------------------------------------

@pytest.mark.parametrize("path, why", [
    ("bin/hello_world", "absolute"),
    ("hello_world", "absolute"),
    ("", "absolute"),
    ("/bin/../bin/hello_world", "'..'"),
    ("/bin/..", "'..'"),
    ("/etc/hosts", "entry point"),
    ("/binary/hello_world", "entry point"),     # a prefix, but not on a component boundary
    ("/", "entry point"),
])
def test_entry_point_refusal(built, path, why):
    with pytest.raises(L.ProgramPathError) as info:
        prepare(built, path=path)
    assert why in str(info.value) and "\n" not in str(info.value)
    assert info.value.status == 127
    assert L.run_in_enclave(path, [], instance_dir=built, host_env={}, load_runtime=False) == 127


def test_entry_points_match_whole_components():
    L.check_program_path("/bin/hello_world", ["/bin"])
    L.check_program_path("/bin//sub/./x", ["/bin/sub/"])
    L.check_program_path("/anything", ["/"])
    with pytest.raises(L.ProgramPathError):
        L.check_program_path("/bin2/x", ["/bin"])


def test_occlum_run_refuses_a_path_outside_the_entry_points_with_127(built):
    proc = occlum(built, "run", "/etc/hosts", check=False)
    assert proc.returncode == 127
    assert len(proc.stderr.strip().splitlines()) == 1 and "entry point" in proc.stderr


# --- tampering with any trusted build product ----------------------------------------

def trusted_build_files(inst: Path) -> list[str]:
    out = []
    for path in sorted((inst / "build").rglob("*")):
        rel = path.relative_to(inst).as_posix()
        if path.is_file() and rel not in BUILD_TIME_ONLY and not rel.startswith(BUILD_TIME_ONLY_DIRS):
            out.append(rel)
    return out


def what_it_protects(rel: str) -> list[str]:
    """Substrings of which one must be in the refusal."""
    for tree in ("build/mount/__ROOT", "build/initfs/__ROOT"):
        if rel.startswith(tree + "/"):
            return [tree]
    if rel == "build/lib/runtime.manifest":
        return ["runtime.manifest does not describe"]
    return [rel]


def flip(path: Path, at: int) -> bytes:
    data = path.read_bytes()
    path.write_bytes(data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:])
    return data


def test_every_trusted_file_is_covered(built):
    files = trusted_build_files(built)
    names = {Path(f).name for f in files}
    assert {"enclave.sigstruct", "enclave.layout", "runtime.manifest", ".ROOT_MAC",
            ".Occlum_sys.json.protected", ".Occlum_sys.mac", "superblock"} <= names
    assert sum(f.startswith("build/mount/__ROOT/") for f in files) > 5
    assert sum(f.startswith("build/initfs/__ROOT/") for f in files) >= 3


def test_a_flipped_byte_in_any_trusted_file_is_refused(built):
    missed = []
    for rel in trusted_build_files(built):
        path = built / rel
        size = path.stat().st_size
        for at in sorted({0, size // 2, size - 1}):
            original = flip(path, at)
            try:
                with pytest.raises((IntegrityError, SignError)) as info:
                    prepare(built)
                msg = str(info.value)
                if "\n" in msg or not any(s in msg for s in what_it_protects(rel)):
                    missed.append(f"{rel}@{at}: {msg}")
            except pytest.fail.Exception:
                missed.append(f"{rel}@{at}: launched")
            finally:
                path.write_bytes(original)
    assert not missed, "\n".join(missed)
    prepare(built)      # everything restored


def test_build_time_only_files_are_not_trusted_at_launch(inst):
    for rel in BUILD_TIME_ONLY:
        (inst / rel).write_text("garbage")
    shutil.rmtree(inst / "build" / ".cache")
    prepare(inst)


def test_a_missing_file_is_named(inst):
    (inst / "build/lib/enclave.sigstruct").unlink()
    assert "build/lib/enclave.sigstruct: no such file" in refused(inst)


def test_a_root_mac_copy_that_disagrees_is_refused(inst, built):
    # a well-formed MAC, just not the image's
    (inst / "build/mount/.ROOT_MAC").write_text((inst / "build/initfs/.ROOT_MAC").read_text())
    assert "build/mount/.ROOT_MAC: does not match" in refused(inst)


def test_a_changed_image_file_is_caught_even_when_only_the_root_is_verified(inst):
    launch = prepare(inst)
    flip(inst / "build/mount/__ROOT" / launch.image.stat("/bin/hello_world").node, 4096 + 10)
    launch = prepare(inst, verify_image="root")     # the root is fine: the launch goes on
    with pytest.raises(IntegrityError, match="block 0 of /bin/hello_world fails its MAC"):
        launch.image.read("/bin/hello_world")       # and the block is refused when read
    assert "build/mount/__ROOT: block 0 of /bin/hello_world" in refused(inst)   # auto: all


# --- the runtime -------------------------------------------------------------------------

def runtime_copy(tmp_path) -> dict:
    """runtime_roots() with the package's measured folders copied (no __pycache__)."""
    copy = tmp_path / "pkg" / "occlum_tasks"
    for folder in ("libos", "image"):
        shutil.copytree(PACKAGE_DIR / folder, copy / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return dict(runtime_roots(), occlum_tasks=copy)


def test_the_runtime_is_checked_against_the_manifest(built, tmp_path):
    roots = runtime_copy(tmp_path)
    prepare(built, runtime_roots=roots)                 # an identical copy passes
    for folder in ("libos", "image"):
        victim = sorted((roots["occlum_tasks"] / folder).rglob("*.py"))[-1]
        original = victim.read_bytes()
        victim.write_bytes(original + b"\n# changed\n")
        msg = refused(built, runtime_roots=roots)
        rel = victim.relative_to(roots["occlum_tasks"]).as_posix()
        assert f"occlum_tasks/{rel} has changed" in msg and "runtime.manifest" in msg
        victim.write_bytes(original)
    (roots["occlum_tasks"] / "image" / "reader.py").unlink()
    assert "occlum_tasks/image/reader.py is measured but missing" in refused(
        built, runtime_roots=roots)


def test_an_added_runtime_file_is_refused(built, tmp_path):
    roots = runtime_copy(tmp_path)
    (roots["occlum_tasks"] / "libos" / "zz_extra.py").write_text("print('not measured')\n")
    assert ("occlum_tasks/libos/zz_extra.py is not part of the measured runtime"
            in refused(built, runtime_roots=roots))


def test_unicorn_version_is_the_installed_distributions():
    from importlib.metadata import version
    import occlum_tasks.runtime_manifest as rm
    assert rm.unicorn_version() == version("unicorn")


def test_the_manifest_measures_unicorns_library_file_and_the_image_code(built):
    text = (built / "build/lib/runtime.manifest").read_text()
    names = [line.split("  ", 1)[1] for line in text.splitlines() if "  " in line]
    assert "unicorn/lib/libunicorn.so.2" in names and "unicorn/unicorn_py3/unicorn.py" in names
    assert {"occlum_tasks/image/reader.py", "occlum_tasks/image/seal.py",
            "occlum_tasks/image/writable.py", "occlum_tasks/libos/syscall/lazy.py"} <= set(names)
    assert not any("__pycache__" in n for n in names)


def test_another_unicorn_is_refused(built, monkeypatch):
    import occlum_tasks.runtime_loader as rl
    monkeypatch.setattr(rl, "unicorn_version", lambda roots=None: "9.9.9")
    assert "unicorn 9.9.9 is installed" in refused(built)


# --- signatures and attributes -----------------------------------------------------------

def test_another_signers_modulus_or_signature_swapped_in_is_refused(inst, other_key):
    from occlum_tasks.sgx.sigstruct import make_sigstruct
    path = inst / "build/lib/enclave.sigstruct"
    ours = path.read_bytes()
    resolved = json.loads((inst / "build/Occlum.resolved.json").read_text())
    theirs = make_sigstruct(ours[960:992], resolved, other_key[0])
    for span in (slice(128, 512), slice(516, 900), slice(516, 1808)):
        path.write_bytes(ours[:span.start] + theirs[span] + ours[span.stop:])
        msg = refused(inst)
        assert msg.startswith("build/lib/enclave.sigstruct: ") and "signature" in msg.lower(), msg


def test_an_enclave_re_signed_by_another_signer_gets_another_identity(inst, other_key, secret_file):
    from occlum_tasks.sgx.sigstruct import make_sigstruct
    path = inst / "build/lib/enclave.sigstruct"
    ours = prepare(inst)
    resolved = json.loads((inst / "build/Occlum.resolved.json").read_text())
    path.write_bytes(make_sigstruct(ours.identity.mrenclave, resolved, other_key[0]))
    # a valid SIGSTRUCT of the same enclave: EINIT passes, but the writable layer belongs
    # to the build's signer, and the new signer's key could not read it
    assert refused(inst).startswith("run/.owner: the writable layer run/ belongs to another")
    (inst / "run" / ".owner").unlink()
    theirs = prepare(inst)
    assert theirs.identity.mrenclave == ours.identity.mrenclave
    assert theirs.identity.mrsigner != ours.identity.mrsigner
    assert theirs.writable_layer_key != ours.writable_layer_key


def test_attributes_must_match_the_signed_ones(inst, other_key):
    from occlum_tasks.sgx.sigstruct import make_sigstruct
    path = inst / "build/lib/enclave.sigstruct"
    mrenclave = path.read_bytes()[960:992]
    resolved = json.loads((inst / "build/Occlum.resolved.json").read_text())
    resolved["metadata"]["debuggable"] = False      # signed for production, config says debug
    path.write_bytes(make_sigstruct(mrenclave, resolved, other_key[0]))
    msg = refused(inst)
    assert "ATTRIBUTES 0x4 do not match the enclave's 0x7" in msg and "debuggable" in msg


def test_config_id_needs_kss(built):
    assert "need KSS" in refused(built, config_id=b"c" * 64)
    assert prepare(built, config_id=bytes(64)).identity.configid == bytes(64)


# --- encrypted images ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def encrypted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("enc")
    key_file = folder / "image_key"
    key_file.write_text(generate_image_key() + "\n")
    inst = new_instance(folder)
    occlum(inst, "build", "--image-key", key_file)
    builtin = new_instance(folder, "builtin")
    occlum(builtin, "build", "--image-key", key_file, "--buildin-image-key")
    return inst, builtin, key_file


def test_an_encrypted_image_needs_its_key(encrypted, tmp_path):
    inst, builtin, key_file = encrypted
    msg = refused(inst)
    assert msg.startswith("build/mount/__ROOT: the image is encrypted") and "--image-key" in msg
    key = read_image_key_file(key_file)
    assert prepare(inst, image_key=key).image.read("/bin/hello_world") == PROGRAM
    wrong = parse_image_key(generate_image_key())
    assert "does not match this image" in refused(inst, image_key=wrong)
    assert prepare(builtin).image.read("/bin/hello_world") == PROGRAM
    bad = tmp_path / "bad_key"
    bad.write_text("not a key")
    with pytest.raises(OcclumError, match="--image-key .*bad_key: invalid image key"):
        read_image_key_file(bad)
    assert L.run_in_enclave("/bin/hello_world", [], instance_dir=inst, host_env={},
                            image_key_file=bad, load_runtime=False) == 1


def test_a_flipped_byte_in_an_encrypted_image_is_refused(encrypted, tmp_path):
    _, builtin, _ = encrypted
    copy = tmp_path / "copy"
    shutil.copytree(builtin, copy, symlinks=True)
    nodes = sorted((copy / "build/mount/__ROOT").iterdir())
    for node in nodes:
        original = flip(node, node.stat().st_size // 2)
        assert refused(copy).startswith("build/mount/__ROOT: ")
        node.write_bytes(original)


# --- the writable layer's key across rebuilds ----------------------------------------------

def test_a_rebuild_with_the_same_signer_keeps_the_writable_layer_key(inst, other_key):
    before = prepare(inst)
    (inst / "image" / "bin" / "hello_world").write_bytes(PROGRAM + b"v2")
    occlum(inst, "build")
    after = prepare(inst)
    assert after.identity.mrenclave != before.identity.mrenclave
    assert after.writable_layer_key == before.writable_layer_key
    occlum(inst, "build", "--sign-key", other_key[1])
    resigned = prepare(inst)                  # the build moved run/ aside for the new signer
    assert resigned.identity.mrenclave == after.identity.mrenclave
    assert resigned.writable_layer_key != after.writable_layer_key


def test_another_platform_secret_gives_another_writable_layer_key(built, tmp_path):
    one = prepare(built, secret_file=tmp_path / "a")
    two = prepare(built, secret_file=tmp_path / "b")
    assert one.writable_layer_key != two.writable_layer_key
    assert prepare(built, secret_file=tmp_path / "a").writable_layer_key == one.writable_layer_key


# --- EGETKEY ---------------------------------------------------------------------------------

SECRET = bytes(range(16))
KNOWN_WRITABLE_LAYER_KEY = "a8aa3efb74a91ba5403fef9e67c22413"


def identity(**changes):
    base = dict(mrenclave=b"E" * 32, mrsigner=b"S" * 32, attributes=0x7, xfrm=0x3,
                miscselect=0, isvprodid=1, isvsvn=3)
    base.update(changes)
    return EnclaveIdentity(**base)


def seal(ident=None, secret=SECRET, policy=K.POLICY_MRSIGNER, **kw):
    return K.egetkey(secret, ident or identity(), K.KEY_SEAL, policy, **kw)


def test_egetkey_known_answer():
    # pins the derivation format: changing it would make every sealed layer unreadable
    assert K.writable_layer_key(SECRET, identity()).hex() == KNOWN_WRITABLE_LAYER_KEY
    data = K.derivation_data(identity(), K.KEY_SEAL, K.POLICY_MRSIGNER)
    assert len(data) == 320 and data[:16] == b"OCCLUMPY-EGETKEY"
    assert data[112:144] == b"S" * 32 and data[80:112] == bytes(32)   # MRSIGNER only


def test_mrsigner_policy_follows_the_signer_not_the_enclave():
    a, b = identity(mrenclave=b"A" * 32), identity(mrenclave=b"B" * 32)
    assert seal(a) == seal(b)
    assert seal(a, policy=K.POLICY_MRENCLAVE) != seal(b, policy=K.POLICY_MRENCLAVE)
    assert seal(identity(mrsigner=b"T" * 32)) != seal(a)
    assert seal(a, secret=bytes(16)) != seal(a)
    assert len(seal(a)) == 16


def test_egetkey_binds_product_svn_debug_and_keyid():
    base = seal()
    assert seal(identity(isvprodid=2)) != base
    assert seal(identity(attributes=0x5)) != base                 # production enclave
    assert seal(identity(attributes=0x5), attribute_mask=0) != seal(attribute_mask=0)  # DEBUG always
    assert seal(keyid=b"k" * 32) != base
    assert seal(isvsvn=2) != base                                 # an older SVN: allowed
    assert seal(identity(isvsvn=4), isvsvn=3) == base             # a newer enclave derives it
    assert seal(cpusvn=bytes(16)) != base                         # an older CPUSVN: allowed
    assert seal(identity(xfrm=0x7)) == base                       # XFRM not in the default mask


@pytest.mark.parametrize("kwargs, code", [
    ({"isvsvn": 4}, "SGX_INVALID_ISVSVN"),
    ({"cpusvn": bytes([2]) + bytes(15)}, "SGX_INVALID_CPUSVN"),
    ({"policy": K.POLICY_NOISVPRODID}, "SGX_INVALID_KEYPOLICY"),     # needs KSS
    ({"policy": 0x40}, "SGX_INVALID_KEYPOLICY"),
])
def test_egetkey_refuses_what_the_cpu_refuses(kwargs, code):
    with pytest.raises(K.EGetKeyError) as info:
        seal(**kwargs)
    assert info.value.code == code and "\n" not in str(info.value)


def test_egetkey_key_names():
    ident = identity()
    with pytest.raises(K.EGetKeyError, match="PROVISIONKEY"):
        K.egetkey(SECRET, ident, K.KEY_PROVISION_SEAL)
    with pytest.raises(K.EGetKeyError, match="EINITTOKENKEY"):
        K.egetkey(SECRET, ident, K.KEY_EINITTOKEN)
    with pytest.raises(K.EGetKeyError, match="unknown key name"):
        K.egetkey(SECRET, ident, 9)
    # the report key ignores policy and SVN, and depends on MRENCLAVE, not MRSIGNER
    report = K.egetkey(SECRET, ident, K.KEY_REPORT)
    assert K.egetkey(SECRET, ident, K.KEY_REPORT, K.POLICY_MRENCLAVE, 0) == report
    assert K.egetkey(SECRET, identity(mrsigner=b"T" * 32), K.KEY_REPORT) == report
    assert K.egetkey(SECRET, identity(mrenclave=b"F" * 32), K.KEY_REPORT) != report
    assert report != seal()


def test_kss_policies():
    kss = identity(attributes=0x87, isvfamilyid=b"f" * 16, isvextprodid=b"x" * 16)
    fam = K.POLICY_MRSIGNER | K.POLICY_ISVFAMILYID
    assert seal(kss, policy=fam) != seal(kss)
    assert seal(kss, policy=fam) != seal(identity(attributes=0x87, isvfamilyid=b"g" * 16), policy=fam)
    noprod = K.POLICY_MRSIGNER | K.POLICY_NOISVPRODID
    assert seal(kss, policy=noprod) == seal(
        identity(attributes=0x87, isvprodid=9, isvfamilyid=b"f" * 16, isvextprodid=b"x" * 16),
        policy=noprod)


# --- the platform secret ----------------------------------------------------------------------

def test_the_secret_file_is_private_and_reused(secret_file):
    one = K.platform_secret()
    st = secret_file.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and len(one) == K.SECRET_SIZE
    assert stat.S_IMODE(secret_file.parent.stat().st_mode) == 0o700
    assert K.platform_secret() == one and K.platform_secret(secret_file) == one
    assert secret_file.stat().st_ino == st.st_ino      # read, never rewritten
    assert not [p for p in secret_file.parent.iterdir() if p != secret_file]   # no leftovers


def test_the_default_secret_location(monkeypatch, tmp_path):
    monkeypatch.delenv(K.SECRET_FILE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert K.secret_path() == tmp_path / ".local/share/occlum-py/platform-secret"


def test_racing_runs_create_one_secret(tmp_path):
    path = tmp_path / "race" / "secret"
    barrier = threading.Barrier(12)
    results = []

    def worker():
        barrier.wait()
        results.append(K.platform_secret(path))

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 12 and len(set(results)) == 1
    # and between processes
    path2 = tmp_path / "race2" / "secret"
    code = ("import sys; from occlum_tasks.sgx.keys import platform_secret; "
            "print(platform_secret(sys.argv[1]).hex())")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path2)], stdout=subprocess.PIPE,
                              text=True) for _ in range(6)]
    outs = {p.communicate()[0].strip() for p in procs}
    assert len(outs) == 1 and bytes.fromhex(outs.pop()) == path2.read_bytes()


def test_a_bad_secret_file_is_refused(secret_file):
    K.platform_secret()
    os.chmod(secret_file, 0o644)
    with pytest.raises(OcclumError, match="other users may access it"):
        K.platform_secret()
    os.chmod(secret_file, 0o600)
    secret_file.write_bytes(b"short")
    with pytest.raises(OcclumError, match="5 bytes, expected 16"):
        K.platform_secret()
