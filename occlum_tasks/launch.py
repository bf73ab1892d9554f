"""`occlum run`: the verified launch, everything before the first guest instruction.

prepare_launch() checks, in order, and stops at the first failure with one line that
names what failed (docs/enclave-formats.md, "Launch"):

  a. EINIT (sgx/einit.py): the SIGSTRUCT's signature, the enclave re-measured from
     build/lib/enclave.layout, build/lib/runtime.manifest and build/.Occlum_sys.mac
     against the signed MRENCLAVE, the protected config against that measured MAC,
     the enclave's attributes against the signed ones;
  b. the runtime about to run (LibOS, SEFS, unicorn) against the measured runtime
     manifest; from here on its modules come only from the bytes hashed there
     (runtime_loader.py; nothing of it runs before EINIT);
  c. the verified config: root MACs, mount entries, the .ROOT_MAC copies;
  d. initfs and the image against their root MACs (wholly, or the root only for big
     images, whose blocks are then checked as they are read); the image key;
then the program path (entry points: exit status 127 when refused), argv, the trusted
environment, resource limits, and the writable layer's sealing key (sgx/keys.py).

This module is on the `occlum run` path, which must start fast: it never imports doit
or jsonschema (the instance paths come from occlum_tasks.paths, which imports neither).
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from .errors import IntegrityError, OcclumError

if TYPE_CHECKING:
    from .image.reader import Image
    from .sgx.einit import EnclaveIdentity

from .paths import (IMAGE_ROOT, IMAGE_ROOT_MAC, INITFS_ROOT, INITFS_ROOT_MAC, LAYOUT,
                    RUN_OWNER, RUN_ROOT, RUNTIME_MANIFEST, SIGSTRUCT, SYS_MAC, SYS_PROTECTED)

# The whole image is verified at launch when its node files hold at most this many
# bytes: at ~260 MB/s (measured, integrity-only and AES-GCM alike) that is ~30 ms. A
# bigger image gets its root checked at launch and every block checked when read.
VERIFY_ALL_LIMIT = 8 << 20
VERIFY_MODES = ("auto", "all", "root")
STATUS_NOT_STARTABLE = 127


class ProgramPathError(OcclumError):
    """The program cannot be started (exit status 127, as Occlum)."""

    status = STATUS_NOT_STARTABLE


@dataclass
class Launch:
    """What the LibOS needs to boot, every piece of it verified."""

    instance_dir: Path
    identity: EnclaveIdentity
    config: dict                   # the verified internal config (.Occlum_sys.json)
    image: Image                   # build/mount/__ROOT, verified (see image_verified)
    initfs: Image                  # build/initfs/__ROOT, verified whole
    image_verified: str            # "all" (every block checked) or "root"
    writable_layer_dir: Path       # run/mount/__ROOT (may not exist yet)
    writable_layer_key: bytes      # its sealing key (16 bytes)
    path: str                      # the program, as given
    argv: list[str]
    envp: list[str]                # "K=V"
    resource_limits: dict          # resource_limits and process sizes, in bytes
    log_level: str | None = None   # None: OCCLUM_LOG_LEVEL decides; a release enclave caps it
    timings: dict = field(default_factory=dict)   # seconds per stage

    def open_file(self, path: str) -> bytes:
        """A file's bytes from the verified image, symbolic links followed inside it
        (what the LibOS loader's `open_file` takes). Every block is checked as read."""
        return self.image.read(resolve_in_image(self.image, path))


def _read(instance: Path, rel: Path) -> bytes:
    try:
        return (instance / rel).read_bytes()
    except FileNotFoundError:
        raise IntegrityError(f"{rel}: no such file; run `occlum build` first") from None
    except OSError as exc:
        raise IntegrityError(f"{rel}: cannot read it: {exc.strerror}") from None


def _canonical_mac(data: bytes, rel: Path) -> bytes:
    """A MAC file as the build writes it (16 hex pairs joined by '-', one newline); any
    other form is refused, so that no byte of it can change unnoticed. Parsed here, not
    with image.keys: image/ is measured code, and none of it runs before EINIT."""
    try:
        mac = bytes.fromhex(data.decode("ascii").replace("-", ""))
    except (UnicodeDecodeError, ValueError):
        mac = b""
    if len(mac) != 16 or data != ("-".join(f"{b:02x}" for b in mac) + "\n").encode():
        raise IntegrityError(f"{rel}: not a MAC as the build writes it")
    return mac


# --- a. EINIT ------------------------------------------------------------------------

def _load_layout(text: bytes):
    from .sgx.layout import EnclaveLayout
    layout = EnclaveLayout.from_json(text, source=str(LAYOUT))
    if layout.to_json().encode() != text:
        raise IntegrityError(f"{LAYOUT}: not in the form the build writes (edited?)")
    return layout


# --- b. the runtime ------------------------------------------------------------------

def code_cache(secret_file):
    """The measured loader's cache: beside the platform secret, under a key from it."""
    from .runtime_code_cache import FOLDER_NAME, CodeCache, cache_key
    from .sgx import keys
    folder = Path(secret_file or keys.secret_path()).parent / FOLDER_NAME
    return CodeCache(folder, cache_key(keys.platform_secret(secret_file)))


def load_runtime_from(runtime, manifest: bytes, load: bool) -> None:
    """Check the runtime read at start-up against the measured manifest; with ``load``,
    make it the only source of the runtime's modules in this process, compiled by the
    measured loader."""
    if not load:
        runtime.check(manifest)
        runtime.close()     # only its hash was needed
        return
    runtime.check(manifest, with_library=False)   # the library: as its binding loads it
    runtime.install()


# --- c. the verified config ----------------------------------------------------------

def _union_layers(config: dict):
    """(image layer, writable layer) of the unionfs at /."""
    for m in config.get("mount") or []:
        if isinstance(m, dict) and m.get("target") == "/" and m.get("type") == "unionfs":
            layers = (m.get("options") or {}).get("layers") or []
            image = [la for la in layers if "MAC" in (la.get("options") or {})]
            rw = [la for la in layers if "MAC" not in (la.get("options") or {})]
            if len(image) == 1 and len(rw) == 1:
                return image[0], rw[0]
    raise IntegrityError(f"{SYS_PROTECTED}: the measured config has no unionfs at / with "
                         "an image layer and a writable layer")


def check_config(config: dict, instance: Path):
    """The root MACs and layer folders the verified config names."""
    from .image.keys import parse_mac
    try:
        image_mac = parse_mac(config["image"]["root_mac"])
        initfs_mac = parse_mac(config["initfs"]["root_mac"])
        encrypted = bool(config["image"]["encrypted"])
        entry_points = list(config["entry_points"])
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(f"{SYS_PROTECTED}: the measured config lacks {exc} (built by "
                             "another version of occlum-py?)") from None
    image_layer, rw_layer = _union_layers(config)
    if image_layer["options"]["MAC"] != config["image"]["root_mac"]:
        raise IntegrityError(f"{SYS_PROTECTED}: the image layer's MAC and the image's root "
                             "MAC differ")
    # The .ROOT_MAC files are the build's copies of what the config holds; the config
    # is what counts, but a copy that disagrees means the build folder was tampered with.
    for rel, mac in ((IMAGE_ROOT_MAC, image_mac), (INITFS_ROOT_MAC, initfs_mac)):
        if _canonical_mac(_read(instance, rel), rel) != mac:
            raise IntegrityError(f"{rel}: does not match the root MAC in the measured config")
    image_dir = Path(image_layer.get("source") or IMAGE_ROOT)
    rw_dir = Path(rw_layer.get("source") or RUN_ROOT)
    return image_mac, initfs_mac, encrypted, entry_points, image_dir, rw_dir


# --- d. initfs and the image ---------------------------------------------------------

def _tree_bytes(folder: Path) -> int:
    try:
        with os.scandir(folder) as it:
            return sum(e.stat(follow_symlinks=False).st_size for e in it if e.is_file())
    except OSError:
        return 0


def open_initfs(instance: Path, mac: bytes):
    from .image.reader import open_image
    initfs = open_image(INITFS_ROOT, mac, name=str(INITFS_ROOT), base=instance)
    initfs.verify_all()     # a few KB: always checked whole
    return initfs


def image_key_from(initfs, encrypted: bool, given: bytes | None, image_name: str):
    """The image key: built into initfs, else the one given (`--image-key FILE`)."""
    import json
    from .image.keys import parse_image_key
    try:
        conf = json.loads(initfs.read("/etc/image_config.json"))
        builtin = bool(conf["image_key_builtin"])
        init_encrypted = bool(conf["image_encrypted"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{INITFS_ROOT}: no usable /etc/image_config.json ({exc})") from None
    if init_encrypted != encrypted:
        raise IntegrityError(f"{INITFS_ROOT}: says the image is "
                             f"{'' if init_encrypted else 'not '}encrypted, the measured "
                             "config says otherwise")
    if not encrypted:
        return None
    if builtin:
        try:
            return parse_image_key(initfs.read("/etc/image_key").decode("ascii"))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise IntegrityError(f"{INITFS_ROOT}: the built-in image key is unusable ({exc})") from None
    if given is None:
        raise IntegrityError(f"{image_name}: the image is encrypted and its key is not built "
                             "in; give it with --image-key FILE")
    return given


def open_verified_image(instance: Path, image_dir: Path, mac: bytes, key, verify: str):
    from .image.reader import open_image
    name = image_dir.as_posix().removeprefix("./")
    image = open_image(image_dir, mac, key=key, name=name, base=instance)
    if verify == "auto":
        verify = "all" if _tree_bytes(instance / image_dir) <= VERIFY_ALL_LIMIT else "root"
    if verify == "all":
        image.verify_all()
    else:
        image.listdir("/")  # the root directory's header and entries
    return image, verify


# --- the program, its arguments and environment ---------------------------------------

def _components(path: str) -> list[str]:
    return [c for c in path.split("/") if c not in ("", ".")]


def absolute_hint(path: str) -> str:
    """What a relative program path most likely meant: the same path from the root of
    image/ (bin/x: /bin/x), or, for a bare name, /bin/NAME as a shell would look it up."""
    import posixpath
    if "/" not in path and path not in ("", ".", ".."):
        return f"/bin/{path}"
    return posixpath.normpath("/" + path)


def check_program_path(path: str, entry_points) -> None:
    """Occlum's rule: absolute, no `..`, under an entry point (whole components)."""
    if not path.startswith("/"):
        raise ProgramPathError(f"{path}: the program path must be absolute, a path in the "
                               f"image (e.g. {absolute_hint(path)})")
    if ".." in path.split("/"):
        raise ProgramPathError(f"{path}: the program path must not contain '..'")
    comps = _components(path)
    for entry in entry_points:
        prefix = _components(entry)
        if comps[:len(prefix)] == prefix:
            return
    raise ProgramPathError(f"{path}: not under an entry point ({', '.join(entry_points)}); "
                           "add its folder to entry_points in Occlum.json")


def trusted_environment(env_config: Mapping, host_env: Mapping) -> list[str]:
    """env.default, then each host variable named in env.untrusted (replacing a default
    of the same name in place); every other host variable is dropped."""
    merged: dict[str, str] = {}
    for entry in env_config.get("default") or []:
        merged[entry.split("=", 1)[0]] = entry
    for name in env_config.get("untrusted") or []:
        if name in host_env:
            merged[name] = f"{name}={host_env[name]}"
    return list(merged.values())


def resource_limits(config: dict) -> dict:
    return dict(config.get("resource_limits") or {}, **(config.get("process") or {}))


def resolve_in_image(image, path: str, max_links: int = 40) -> str:
    """``path`` with every symbolic link in it resolved inside the image (never out of
    it: `..` stops at its root), as the kernel would; raises FileNotFoundError,
    NotADirectoryError, or OSError(ELOOP)."""
    import errno
    import posixpath
    todo = [c for c in path.split("/") if c not in ("", ".")]
    todo.reverse()
    cur, links = "/", 0
    while todo:
        name = todo.pop()
        if name == "..":
            cur = posixpath.dirname(cur)
            continue
        nxt = posixpath.join(cur, name)
        if image.stat(nxt).is_symlink:
            links += 1
            if links > max_links:
                raise OSError(errno.ELOOP, "Too many levels of symbolic links", path)
            target = image.readlink(nxt)
            if target.startswith("/"):
                cur = "/"
            todo.extend(reversed([c for c in target.split("/") if c not in ("", ".")]))
        else:
            cur = nxt
    return cur


LOG_LEVELS = ("error", "panic", "fatal", "warn", "warning", "info", "debug", "trace")


def log_level(metadata: Mapping, host_env: Mapping) -> str | None:
    """The LibOS's log level: OCCLUM_LOG_LEVEL (None lets the LibOS read it), except
    that `disable_log` turns logging off and a release enclave logs errors at most
    (occlum-facts.md: a release enclave caps logging at `error`)."""
    if metadata.get("disable_log"):
        return "off"
    if metadata.get("debuggable", True):
        return None
    asked = str(host_env.get("OCCLUM_LOG_LEVEL", "")).strip().lower()
    return "error" if asked in LOG_LEVELS else "off"


# --- the whole launch ----------------------------------------------------------------

def prepare_launch(instance_dir, path: str, args, host_env: Mapping,
                   image_key: bytes | None = None, *, image_key_file=None,
                   verify_image: str = "auto",
                   secret_file=None, runtime_roots=None, load_runtime: bool = True,
                   config_id: bytes | None = None,
                   config_svn: int = 0) -> Launch:
    """Verify the built instance in ``instance_dir`` and prepare ``path`` to run.

    ``image_key``: the key of an encrypted image that has none built in (or
    ``image_key_file``, its file, read once the runtime is checked). ``verify_image``:
    "auto" (whole image if small), "all" or "root". ``secret_file``: the platform secret
    (default: sgx.keys.secret_path()). ``runtime_roots``: {"occlum_tasks": folder,
    "unicorn": folder}, the runtime that will run (the installed one by default).
    ``load_runtime``: from step b on, this process takes the runtime's modules only from
    the bytes checked (runtime_loader.py); False checks them but leaves the process's
    imports alone (tests that prepare launches in-process). Raises IntegrityError /
    SignError, or ProgramPathError (status 127), each one line.
    """
    from .runtime_loader import Runtime
    from .sgx import keys
    from .sgx.einit import einit
    if verify_image not in VERIFY_MODES:
        raise ValueError(f"verify_image must be one of {VERIFY_MODES}")
    instance = Path(instance_dir)
    from .build_state import check_complete
    check_complete(instance)     # a commit cut short is "incomplete", not tampering
    timings, t0 = {}, time.perf_counter()

    def lap(stage):
        nonlocal t0
        now = time.perf_counter()
        timings[stage] = now - t0
        t0 = now

    # Every input is read once; what is checked is what is used.
    # read and hashed; unicorn's library on a thread
    runtime = Runtime(runtime_roots, code_cache(secret_file) if load_runtime else None)
    try:
        sigstruct = _read(instance, SIGSTRUCT)
        layout = _load_layout(_read(instance, LAYOUT))
        manifest = _read(instance, RUNTIME_MANIFEST)
        config_mac = _canonical_mac(_read(instance, SYS_MAC), SYS_MAC)
        protected = _read(instance, SYS_PROTECTED)
        lap("read")
        # a. EINIT (the config is opened there: it holds the attributes the enclave asks for)
        try:
            identity, config = einit(sigstruct, layout, manifest, config_mac, protected,
                                     config_id=config_id, config_svn=config_svn)
        except IntegrityError:
            # again, for the message only: it names the manifest if it no longer describes
            # the runtime installed (which needs the library's hash, so not on the fast path)
            einit(sigstruct, layout, manifest, config_mac, protected, config_id=config_id,
                  config_svn=config_svn, current_manifest=runtime.current_manifest().encode())
            raise
        lap("einit")
        # b. the code about to run is the measured code, and only it will be loaded
        load_runtime_from(runtime, manifest, load_runtime)
    except BaseException:
        runtime.close()     # refused: no sealed copy of the library is left open
        raise
    if image_key_file is not None:
        from .image.keys import read_image_key_file
        image_key = read_image_key_file(image_key_file)
    # the layout was checked by the measurement; it must also be the config's
    from .sgx.layout import EnclaveLayout
    if EnclaveLayout.from_config(config, manifest, config_mac) != layout:
        raise IntegrityError(f"{LAYOUT}: does not follow the measured config's resource_limits")
    lap("runtime")
    # c. the verified config
    image_mac, initfs_mac, encrypted, entry_points, image_dir, rw_dir = check_config(config, instance)
    if (instance / RUN_OWNER).is_file():
        recorded = _read(instance, RUN_OWNER).decode("ascii", "replace")
        if recorded != layer_owner(identity):
            raise IntegrityError(f"{RUN_OWNER}: the writable layer run/ belongs to another "
                                 f"enclave owner ({recorded.strip()}); this enclave "
                                 f"({layer_owner(identity).strip()}) cannot read it")
    lap("config")
    # d. initfs, the image key, the image
    initfs = open_initfs(instance, initfs_mac)
    key = image_key_from(initfs, encrypted, image_key, image_dir.as_posix().removeprefix("./"))
    image, verified = open_verified_image(instance, image_dir, image_mac, key, verify_image)
    lap("image")
    # the program
    check_program_path(path, entry_points)
    argv = [os.path.basename(path.rstrip("/")) or path] + [str(a) for a in args]
    envp = trusted_environment(config.get("env") or {}, host_env)
    layer_key = keys.writable_layer_key(keys.platform_secret(secret_file), identity)
    lap("program")
    return Launch(instance_dir=instance, identity=identity, config=config, image=image,
                  initfs=initfs, image_verified=verified,
                  writable_layer_dir=instance / rw_dir, writable_layer_key=layer_key,
                  path=path, argv=argv, envp=envp, resource_limits=resource_limits(config),
                  log_level=log_level(config.get("metadata") or {}, host_env), timings=timings)


def split_at_program(path: str, argv) -> tuple[list, list]:
    """(the arguments before the program's path, the program's own arguments exactly as
    typed after it). Both `occlum run` and `doit run` take the program's arguments
    from the raw command line: their parsers would eat `--`, `k=v` or options."""
    argv = list(argv)
    for i, arg in enumerate(argv):
        if arg == path:
            return argv[:i], argv[i + 1:]
    return argv, []


def run_in_enclave(path, args, *, image_key_file=None, instance_dir=None, host_env=None,
                   load_runtime=True):
    """`occlum run PATH ARGS` in the current instance: verify, then boot. Returns the
    exit status; failures are one line on stderr (status 1, or 127 when the program
    cannot be started). ``load_runtime``: as prepare_launch's (False only in tests)."""
    try:
        from .instance_lock import hold
        instance = Path.cwd() if instance_dir is None else instance_dir
        with hold(instance):        # a second enclave on this instance is refused at once
            launch = prepare_launch(instance, path, list(args),
                                    os.environ if host_env is None else host_env,
                                    image_key_file=image_key_file, load_runtime=load_runtime)
            return boot(launch)
    except ProgramPathError as err:
        print(f"occlum run: {err}", file=sys.stderr)
        return err.status
    except OcclumError as err:      # also a block of the image failing its MAC while running
        print(f"occlum run: {err}", file=sys.stderr)
        return 1


def layer_owner(identity) -> str:
    from .sgx.keys import writable_layer_owner
    return writable_layer_owner(identity.mrsigner, identity.isvprodid, identity.isvsvn,
                                identity.debug, identity.kss)


def boot(launch: Launch) -> int:
    """Hand the verified launch to the LibOS; its return value is the exit status."""
    from .libos.enclave import run_program
    limits = launch.resource_limits
    # ---- LEAD: the single call site of the LibOS (libos/enclave.py run_program). It gets
    # ---- only verified things: the mounts of the verified config over the verified
    # ---- image and the writable layer opened with its sealing key.
    from .libos.fs.mounts import mount_from_config
    from .instance_lock import hold
    from .sgx.keys import secret_path
    # one enclave at a time on the writable layers (run/.lock), for the enclave's life
    with hold(launch.instance_dir), \
            mount_from_config(launch.config.get("mount"), instance_dir=launch.instance_dir,
                              image=launch.image, writable_layer_dir=launch.writable_layer_dir,
                              writable_layer_key=launch.writable_layer_key,
                              protected=[secret_path()]) as mounts:
        owner = launch.instance_dir / RUN_OWNER
        if not owner.is_file():
            # a layer made by a run before any build recorded it: record it now, so
            # that the next build knows whether the layer stays readable
            from .fsutil import write_atomic
            write_atomic(RUN_OWNER, layer_owner(launch.identity), base=launch.instance_dir)
        return run_program(mounts, launch.path, launch.argv, launch.envp,
                           user_space_size=limits["user_space_size"],
                           default_stack_size=limits["default_stack_size"],
                           default_heap_size=limits["default_heap_size"],
                           max_num_of_threads=limits["max_num_of_threads"],
                           log_level=launch.log_level)
