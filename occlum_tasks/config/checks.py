"""Rules the schema cannot say: values against each other, the mounts, the host folders.

These run on the raw document even when the schema found errors, so that every problem
is reported at once; each rule looks only at values of the right form and leaves wrong
ones to the schema's message (so nothing is reported twice).
"""

import re
from pathlib import Path

from .bounds import check_bounds, effective_size
from .defaults import section
from .report import normalise_path, show
from .sizes import SIZE_RE, format_size, parse_size, size_or_none

SIZE_FIELDS = {
    "resource_limits": ("kernel_space_heap_size", "kernel_space_heap_max_size",
                        "kernel_space_stack_size", "user_space_size", "user_space_max_size"),
    "process": ("default_stack_size", "default_heap_size", "default_mmap_size"),
}
# A sefs page cache smaller than this cannot hold the pages SEFS pins (Occlum's minimum).
MIN_CACHE_SIZE = 192 * 1024
PAGE_SIZE = 4096
MOUNT_TYPES = {"sefs", "hostfs", "ramfs", "unionfs", "devfs", "procfs"}
# Occlum mounts these itself; another file system there would hide it.
RESERVED_TARGETS = {"/proc": "procfs", "/dev": "devfs"}
_HEX64 = re.compile(r"0x0*[0-9a-fA-F]{1,16}")


def _is_int(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == int(value)


def _abs_target(value):
    if isinstance(value, str) and value.startswith("/"):
        return normalise_path(value)
    return None


def check_semantics(config, findings, instance_dir):
    if not isinstance(config, dict):
        return
    _check_sizes(config, findings)
    _check_limits(config, findings)
    _check_metadata(config, findings)
    _check_env(config, findings)
    check_bounds(config, findings, instance_dir)
    if "mount" in config and isinstance(config["mount"], list):
        _check_mounts(config["mount"], findings, Path(instance_dir))
        _check_sefs_sources(config["mount"], findings, Path(instance_dir))


def _check_sizes(config, findings):
    for section_name, keys in SIZE_FIELDS.items():
        given = section(config, section_name)
        for key in keys:
            value = given.get(key)
            if not (isinstance(value, str) and SIZE_RE.fullmatch(value)):
                continue
            path = (section_name, key)
            try:
                size = parse_size(value)
            except ValueError as e:
                findings.error(path, str(e))
                continue
            if size == 0 and section_name == "resource_limits":
                findings.error(path, f"{show(value)} must be more than 0")


def _check_limits(config, findings):
    limits = section(config, "resource_limits")
    for low_key, high_key in (("kernel_space_heap_size", "kernel_space_heap_max_size"),
                              ("user_space_size", "user_space_max_size")):
        low, high = size_or_none(limits.get(low_key)), size_or_none(limits.get(high_key))
        if low is not None and high is not None and high < low:
            findings.error(("resource_limits", high_key),
                           f"{show(limits[high_key])} is smaller than {low_key} ({show(limits[low_key])})")
    init, most = limits.get("init_num_of_threads"), limits.get("max_num_of_threads")
    if _is_int(init) and _is_int(most) and init > most:
        findings.error(("resource_limits", "init_num_of_threads"),
                       f"{show(init)} is more than max_num_of_threads ({show(most)})")

    # One process's heap and stack come out of user space: they must at least fit.
    heap = effective_size(config, "process", "default_heap_size")
    stack = effective_size(config, "process", "default_stack_size")
    user = effective_size(config, "resource_limits", "user_space_size")
    if None in (heap, stack, user) or user == 0 or heap + stack <= user:
        return
    given = section(config, "process")
    path = ("process",) if ("default_heap_size" in given or "default_stack_size" in given) \
        else ("resource_limits", "user_space_size")
    findings.error(path, f"default_heap_size ({format_size(heap)}) + default_stack_size "
                         f"({format_size(stack)}) = {format_size(heap + stack)} do not fit in "
                         f"user_space_size ({format_size(user)})")


def _check_metadata(config, findings):
    meta = section(config, "metadata")
    if meta.get("enable_kss") is True:
        return
    for key in ("family_id", "ext_prod_id"):
        ident = meta.get(key)
        if not isinstance(ident, dict):
            continue
        for half in ("high", "low"):
            value = ident.get(half)
            if isinstance(value, str) and _HEX64.fullmatch(value) and int(value, 16):
                findings.warn(("metadata", key, half), "ignored because metadata.enable_kss is false")


def _check_env(config, findings):
    env = section(config, "env")
    defaults = env.get("default")
    if not isinstance(defaults, list):
        return
    first = {}
    for i, item in enumerate(defaults):
        if not (isinstance(item, str) and "=" in item):
            continue
        name = item.split("=", 1)[0]
        if name in first:
            findings.warn(("env", "default", i), f'"{name}" is already set by env.default[{first[name]}]')
        else:
            first[name] = i


def _check_mounts(mounts, findings, instance_dir):
    used = {}
    for i, mount in enumerate(mounts):
        if not isinstance(mount, dict):
            continue
        path = ("mount", i)
        _check_mount(mount, path, findings, instance_dir)
        target = _abs_target(mount.get("target"))
        if target is None:
            continue
        if target in used:
            findings.error(path + ("target",), f"{show(mount['target'])} is already used by mount[{used[target]}]")
        else:
            used[target] = i
        kind = mount.get("type")
        if target in RESERVED_TARGETS and kind in MOUNT_TYPES and kind != RESERVED_TARGETS[target]:
            findings.error(path + ("type",), f'{show(kind)} cannot be mounted at "{target}"; '
                                             f"it is reserved for {RESERVED_TARGETS[target]}")
    _check_root(mounts, findings)


def _check_mount(mount, path, findings, instance_dir):
    """Rules of one entry (top level or a layer): its options, layers and source."""
    kind = mount.get("type")
    options = mount.get("options")
    options = options if isinstance(options, dict) else {}
    opath = path + ("options",)

    if kind in MOUNT_TYPES:
        for key in ("MAC", "temporary", "cache_size"):
            if key in options and kind != "sefs":
                findings.warn(opath + (key,), f"ignored; only a sefs has {key}", at_key=True)
        if "layers" in options and kind != "unionfs":
            findings.warn(opath + ("layers",), "ignored; only a unionfs has layers", at_key=True)

    if options.get("temporary") is True and "MAC" in options:
        findings.error(opath + ("temporary",), 'cannot be used together with "MAC": a temporary '
                                               "sefs starts empty at each boot, so no image MAC applies")

    cache = size_or_none(options.get("cache_size"))
    if cache is not None:
        shown = show(options["cache_size"])
        if cache < MIN_CACHE_SIZE:
            findings.error(opath + ("cache_size",), f"{shown} is too small; the cache needs at least 192KB")
        elif cache % PAGE_SIZE:
            findings.error(opath + ("cache_size",), f"{shown} is not a multiple of 4KB")

    source = mount.get("source")
    if kind == "hostfs" and isinstance(source, str) and source:
        folder = Path(source) if Path(source).is_absolute() else instance_dir / source
        if not folder.exists():
            findings.error(path + ("source",), f"{show(source)} does not exist (a hostfs source "
                                               "is a folder relative to the instance folder)")
        elif not folder.is_dir():
            findings.error(path + ("source",), f"{show(source)} is not a folder")

    layers = options.get("layers")
    if kind == "unionfs" and isinstance(layers, list):
        if len(layers) != 2:
            findings.error(opath + ("layers",), f"a unionfs needs exactly 2 layers (the lower, "
                                                f"then the upper); found {len(layers)}")
        for j, layer in enumerate(layers):
            if not isinstance(layer, dict):
                continue
            lpath = opath + ("layers", j)
            if layer.get("type") in MOUNT_TYPES and layer["type"] != "sefs":
                findings.error(lpath + ("type",), f"{show(layer['type'])} cannot be a unionfs layer; "
                                                  "expected sefs")
            _check_mount(layer, lpath, findings, instance_dir)


IMAGE_SOURCE = "./build/mount/__ROOT"
WRITABLE_SOURCE = "./run/mount/__ROOT"


def _check_root(mounts, findings):
    at_root = [(i, m) for i, m in enumerate(mounts) if isinstance(m, dict)
               and _abs_target(m.get("target")) == "/"]
    roots = [(i, m) for i, m in at_root if m.get("type") == "unionfs"]
    if not roots:
        # An entry at "/" whose type is misspelt already has its own error.
        if not any(m.get("type") not in MOUNT_TYPES for _, m in at_root):
            findings.error(("mount",), 'no unionfs mounted at "/"; Occlum needs one whose layers are '
                                       'the image (a sefs with a "MAC" option) and the writable layer '
                                       '(a sefs without)')
        return
    i, root = roots[0]
    options = root.get("options")
    layers = options.get("layers") if isinstance(options, dict) else None
    if not isinstance(layers, list) or len(layers) != 2:
        return  # reported above, or by the schema
    lpath = ("mount", i, "options", "layers")
    for j, layer in enumerate(layers):
        if not isinstance(layer, dict):
            continue
        target = _abs_target(layer.get("target"))
        if target is not None and target != "/":
            findings.error(lpath + (j, "target"), f'{show(layer["target"])} must be "/" in the root unionfs')
    image, writable = layers
    if isinstance(image, dict) and image.get("type") == "sefs":
        image_options = image.get("options")
        if not (isinstance(image_options, dict) and "MAC" in image_options):
            findings.error(lpath + (0,), 'the image layer (the lower) needs a "MAC" option '
                                         '("" until the build fills it)')
    # the build writes the image, and guards the writable layer, at these places only
    for j, (layer, expected) in enumerate(((image, IMAGE_SOURCE), (writable, WRITABLE_SOURCE))):
        source = layer.get("source") if isinstance(layer, dict) else None
        if isinstance(source, str) and source.rstrip("/") not in (expected, expected[2:]):
            findings.error(lpath + (j, "source"), f'{show(source)} must be "{expected}": the '
                                                  "build writes and checks that folder")
    if isinstance(writable, dict):
        writable_options = writable.get("options")
        if isinstance(writable_options, dict) and "MAC" in writable_options:
            findings.error(lpath + (1, "options", "MAC"), "the writable layer (the upper) must not "
                                                          "have a MAC; only the image layer has one",
                           at_key=True)


def _check_sefs_sources(mounts, findings, instance_dir):
    """The folder of each sefs mounted elsewhere than "/" (a writable layer of its own):
    inside the instance folder, reached without a link, and shared with no other layer,
    nor inside build/ (the build owns it) or image/ (it would be built into the image).
    ("" is the schema's to report.)"""
    folders = [("the writable layer of /", WRITABLE_SOURCE[2:].split("/"))]
    for i, mount in enumerate(mounts):
        if not isinstance(mount, dict) or mount.get("type") != "sefs":
            continue
        options = mount.get("options") if isinstance(mount.get("options"), dict) else {}
        source = mount.get("source")
        if (_abs_target(mount.get("target")) in (None, "/") or options.get("temporary") is True
                or "MAC" in options or not isinstance(source, str) or not source):
            continue
        path = ("mount", i, "source")
        parts = [p for p in source.split("/") if p not in ("", ".")]
        where = 'a folder inside the instance folder, relative to it (e.g. "./run/mount/data")'
        if source.startswith("/"):
            findings.error(path, f"{show(source)} is an absolute path; a sefs source must be {where}")
        elif ".." in parts:
            findings.error(path, f'{show(source)} must not contain ".."; a sefs source must be {where}')
        elif not parts:
            findings.error(path, f"{show(source)} is the instance folder itself; a sefs source must be {where}")
        elif parts[0] in ("build", "image"):
            findings.error(path, f"{show(source)} is inside {parts[0]}/, which the build "
                                 f"{'owns' if parts[0] == 'build' else 'encodes into the image'}; "
                                 f"a sefs source must be {where}")
        else:
            shared = next((name for name, other in folders
                           if other[:len(parts)] == parts or parts[:len(other)] == other), None)
            if shared is not None:
                findings.error(path, f"{show(source)} overlaps the folder of {shared}; each sefs "
                                     "needs a folder of its own")
            else:
                link = next((instance_dir.joinpath(*parts[:k]) for k in range(1, len(parts) + 1)
                             if instance_dir.joinpath(*parts[:k]).is_symlink()), None)
                if link is not None:
                    findings.error(path, f"{show(source)}: {link.relative_to(instance_dir)} is a "
                                         "symbolic link; a sefs folder is never reached through one")
            folders.append((f"mount[{i}] ({show(source)})", parts))
