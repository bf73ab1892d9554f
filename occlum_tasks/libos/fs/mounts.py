"""The mount table of one enclave run: which file system is mounted where.

`MountSet` is what `run_program` takes. It is built from the verified config by
`mount_from_config` (the `mount` list of .Occlum_sys.json), or over a host folder by
`host_root` (tests, debugging). procfs at /proc and devfs at /dev are always mounted,
as Occlum does.

Config mount entries and what they become:
  unionfs at /     the image layer (the sefs with a MAC: the verified image) below the
                   writable layer (the sefs without, run/mount/__ROOT) above;
  hostfs           its source folder, relative to the instance folder, confined, and
                   kept away from what the enclave's trust rests on (protected_paths);
  ramfs            an empty ramfs;
  sefs             a writable layer of its own (sealed with its mount's key: the
                   enclave's layer key bound to the target, image.keys.mount_key), or
                   a ramfs when `temporary` (it starts empty at each boot anyway);
  procfs, devfs    /proc and /dev.
Layer folders are opened from the instance folder without following a link (fsutil).
"""
import glob
import os

from .devfs import new_devfs
from .hostfs import HostFs
from .path import Vfs
from .procfs import ProcFs
from .ramfs import RamFs
from .unionfs import UnionFs


class MountSet:
    def __init__(self):
        self.mounts = {}          # target -> FileSystem
        self.warnings = []        # reported when the run's log is set up
        self._next_dev = 1

    def new_dev(self) -> int:
        """A device number for the next file system (what st_dev shows)."""
        dev = self._next_dev
        self._next_dev += 1
        return dev

    def mount(self, target: str, fs) -> None:
        target = "/" + "/".join(c for c in target.split("/") if c)
        if target in self.mounts:
            raise ValueError("two file systems mounted at %s" % target)
        self.mounts[target] = fs

    def mount_system(self) -> None:
        """procfs and devfs where the config did not put them (Occlum always has them)."""
        from . import current_vfs
        if "/proc" not in self.mounts:
            self.mount("/proc", ProcFs(self.new_dev(), current_vfs))
        if "/dev" not in self.mounts:
            self.mount("/dev", new_devfs(self.new_dev()))

    def vfs(self) -> Vfs:
        vfs = Vfs(self.mounts)
        for problem in vfs.make_mount_points():
            if problem not in self.warnings:
                self.warnings.append(problem)
        return vfs

    def read_file(self, path: str) -> bytes:
        """A file's bytes through these mounts (links followed): for tests and tools."""
        return self.vfs().read_file(path)

    def sync(self) -> None:
        for fs in self.mounts.values():
            fs.sync()

    def close(self) -> None:
        """Commit and close every file system (the writable layers last commit here)."""
        mounts, self.mounts = self.mounts, {}
        failure = None
        for fs in mounts.values():
            try:
                fs.close()
            except Exception as exc:  # noqa: BLE001 - close the others, then report
                failure = failure or exc
        if failure is not None:
            raise failure

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def host_root(folder, extra=()) -> MountSet:
    """A hostfs over `folder` at /, with procfs and devfs; `extra`: (target, fs) pairs."""
    mounts = MountSet()
    mounts.mount("/", HostFs(folder, mounts.new_dev()))
    for target, fs in extra:
        mounts.mount(target, fs)
    mounts.mount_system()
    return mounts


def _layers(entry):
    layers = (entry.get("options") or {}).get("layers") or []
    image = [la for la in layers if "MAC" in (la.get("options") or {})]
    rw = [la for la in layers if "MAC" not in (la.get("options") or {})]
    return image, rw


def _sefs_folder(instance_dir, entry):
    """The folder of a non-root sefs mount: its source, inside the instance folder."""
    from ...errors import OcclumError
    source = entry.get("source") or ""
    parts = [p for p in source.split("/") if p not in ("", ".")]
    if not parts or ".." in parts or source.startswith("/"):
        # the config check refuses these; a config that bypassed it still escapes nothing
        raise OcclumError("sefs at %s: its source %r must be a folder inside the instance"
                          % (entry.get("target"), source))
    return os.path.join(instance_dir, *parts)


def protected_paths(mount_config, instance_dir, writable_layer_dir, extra=()):
    """Host paths that no hostfs may reach: what the enclave's trust rests on (the
    signed build/, the writable layers and their lock in run/ and any other sefs
    folder, the layers moved aside), and `extra` (the launch adds the platform secret
    the enclave's keys derive from)."""
    paths = [os.path.join(instance_dir, "build"), os.path.join(instance_dir, "run"),
             os.fspath(writable_layer_dir)] + [os.fspath(p) for p in extra]
    paths += sorted(glob.glob(os.path.join(glob.escape(instance_dir), "run.old-*")))
    for entry in mount_config or []:
        options = entry.get("options") or {}
        if entry.get("type") == "sefs" and (entry.get("target") or "/") != "/" \
                and not options.get("temporary") and "MAC" not in options:
            try:
                paths.append(_sefs_folder(instance_dir, entry))
            except Exception:  # noqa: BLE001 - refused when the mount itself is made
                pass
    return paths


def mount_from_config(mount_config, *, instance_dir, image, writable_layer_dir, writable_layer_key,
                      writable_layer_name="run/mount/__ROOT", protected=()) -> MountSet:
    """The mounts the verified config asks for. `image`: the verified image reader (the
    lower layer at /); the writable layer is opened from `writable_layer_dir` (inside
    `instance_dir`) with its mount's key, derived from `writable_layer_key` (the
    enclave's sealing key) and "/"; each other sefs likewise with its own target.
    IntegrityError if a layer was tampered with or sealed with another key. protected:
    more host paths that no hostfs may reach (see protected_paths)."""
    from ...image.keys import mount_key
    from .sefs_ro import ImageLayer
    from .sefs_rw import open_layer
    instance_dir = os.fspath(instance_dir)
    protected = protected_paths(mount_config, instance_dir, writable_layer_dir, protected)
    mounts = MountSet()
    try:
        for entry in mount_config or []:
            kind, target = entry.get("type"), entry.get("target") or ""
            source = entry.get("source")
            if kind == "unionfs" and target == "/":
                image_layers, rw_layers = _layers(entry)
                lower = ImageLayer(image) if image_layers else None
                upper = open_layer(writable_layer_dir, mount_key(writable_layer_key, "/"),
                                   writable_layer_name, base=instance_dir) if rw_layers else None
                mounts.mount("/", UnionFs(lower, upper, mounts.new_dev()))
            elif kind == "hostfs":
                folder = source if os.path.isabs(source or "") else os.path.join(instance_dir, source or ".")
                if not os.path.isdir(folder):
                    mounts.warnings.append("hostfs at %s: its source %s is not a folder; not mounted"
                                           % (target, source))
                    continue
                try:
                    host = HostFs(folder, mounts.new_dev(), protected=protected)
                except PermissionError:
                    mounts.warnings.append("hostfs at %s: its source %s is inside build/, run/ or "
                                           "a sefs folder, which the enclave's trust rests on; "
                                           "not mounted" % (target, source))
                    continue
                mounts.mount(target, host)
            elif kind == "ramfs":
                mounts.mount(target, RamFs(mounts.new_dev()))
            elif kind == "sefs" and target != "/":
                options = entry.get("options") or {}
                if options.get("temporary"):
                    mounts.mount(target, RamFs(mounts.new_dev()))
                elif "MAC" in options:
                    mounts.warnings.append("sefs at %s: an integrity-protected sefs other than the "
                                           "image is not supported; not mounted" % target)
                else:
                    folder = _sefs_folder(instance_dir, entry)
                    layer = open_layer(folder, mount_key(writable_layer_key, target),
                                       source or target, base=instance_dir)
                    mounts.mount(target, UnionFs(None, layer, mounts.new_dev()))
            elif kind == "procfs":
                from . import current_vfs
                mounts.mount(target, ProcFs(mounts.new_dev(), current_vfs))
            elif kind == "devfs":
                mounts.mount(target, new_devfs(mounts.new_dev()))
            else:
                mounts.warnings.append("%s at %s: this mount is not supported; not mounted"
                                       % (kind, target))
        if "/" not in mounts.mounts:
            raise ValueError("the config mounts nothing at /")
        mounts.mount_system()
    except BaseException:
        mounts.close()
        raise
    return mounts
