"""Occlum 0.31's default values, and the resolved form of a valid configuration.

The defaults are those of Occlum's default Occlum.json (templates/Occlum.json.j2 renders
the same; a test keeps the two equal). resolve() runs only on a document that passed
every check, so it can index without guarding.
"""

import copy

from .report import normalise_path
from .sizes import parse_size

ROOT_MOUNT = {
    "target": "/",
    "type": "unionfs",
    "options": {
        "layers": [
            {"target": "/", "type": "sefs", "source": "./build/mount/__ROOT", "options": {"MAC": ""}},
            {"target": "/", "type": "sefs", "source": "./run/mount/__ROOT"},
        ]
    },
}

DEFAULTS = {
    "resource_limits": {
        "kernel_space_heap_size": "32MB",
        "kernel_space_stack_size": "1MB",
        "user_space_size": "300MB",
        "max_num_of_threads": 32,
    },
    "process": {
        "default_stack_size": "4MB",
        "default_heap_size": "32MB",
        "default_mmap_size": "100MB",
    },
    "entry_points": ["/bin"],
    "env": {"default": ["OCCLUM=yes"], "untrusted": ["EXAMPLE"]},
    "metadata": {
        "product_id": 0,
        "version_number": 0,
        "debuggable": True,
        "enable_kss": False,
        "family_id": {"high": "0x0", "low": "0x0"},
        "ext_prod_id": {"high": "0x0", "low": "0x0"},
    },
    "feature": {
        "amx": 0,
        "pkru": 0,
        "io_uring": 0,
        "enable_edmm": False,
        "enable_posix_shm": False,
    },
    "mount": [
        ROOT_MOUNT,
        {"target": "/host", "type": "hostfs", "source": "."},
        {"target": "/proc", "type": "procfs"},
        {"target": "/dev", "type": "devfs"},
    ],
}


def section(config, name):
    """The user's object for a section, or {} when absent (its fields then default)."""
    value = config.get(name)
    return value if isinstance(value, dict) else {}


def effective(config, section_name, key):
    """The user's value of section.key, or the default when the user gave none."""
    given = section(config, section_name)
    if key in given:
        return given[key]
    return DEFAULTS[section_name].get(key)


def _sizes(config, section_name, keys):
    return {key: parse_size(effective(config, section_name, key)) for key in keys}


def resolve(config):
    """The configuration with defaults filled, sizes in bytes and unknown keys dropped."""
    limits = section(config, "resource_limits") or DEFAULTS["resource_limits"]
    heap = parse_size(limits["kernel_space_heap_size"])
    user = parse_size(limits["user_space_size"])
    threads = int(limits["max_num_of_threads"])
    # Optional bounds default to the fixed value: what Occlum does on a platform
    # without EDMM, which includes SIM mode. EDMM-specific growth is the layout's job.
    resource_limits = {
        "kernel_space_heap_size": heap,
        "kernel_space_heap_max_size": parse_size(limits.get("kernel_space_heap_max_size", f"{heap}B")),
        "kernel_space_stack_size": parse_size(limits["kernel_space_stack_size"]),
        "user_space_size": user,
        "user_space_max_size": parse_size(limits.get("user_space_max_size", f"{user}B")),
        "max_num_of_threads": threads,
        "init_num_of_threads": int(limits.get("init_num_of_threads", threads)),
    }
    process = _sizes(config, "process", ("default_stack_size", "default_heap_size", "default_mmap_size"))

    entry_points = config.get("entry_points", DEFAULTS["entry_points"])
    env = {key: list(effective(config, "env", key)) for key in ("default", "untrusted")}

    meta = {key: effective(config, "metadata", key)
            for key in ("product_id", "version_number", "debuggable", "enable_kss")}
    meta = {key: int(value) if isinstance(value, float) else value for key, value in meta.items()}
    given_meta = section(config, "metadata")
    # Occlum: a release enclave logs nothing unless the user says otherwise.
    meta["disable_log"] = given_meta.get("disable_log", not meta["debuggable"])
    for key in ("family_id", "ext_prod_id"):
        ident = effective(config, "metadata", key)
        meta[key] = {"high": ident["high"], "low": ident["low"]}

    feature = {key: effective(config, "feature", key)
               for key in ("amx", "pkru", "io_uring", "enable_edmm", "enable_posix_shm")}
    feature = {key: int(value) if isinstance(value, float) else value for key, value in feature.items()}

    mounts = config.get("mount", DEFAULTS["mount"])
    return {
        "resource_limits": resource_limits,
        "process": process,
        "entry_points": [normalise_path(p) for p in entry_points],
        "env": env,
        "metadata": meta,
        "feature": feature,
        "mount": [resolve_mount(m) for m in mounts],
    }


def resolve_mount(mount):
    """A mount entry with a fixed shape: target, type, source (or None), options."""
    given = mount.get("options", {})
    options = {}
    if "MAC" in given:
        options["MAC"] = given["MAC"]
    if "layers" in given:
        options["layers"] = [resolve_mount(layer) for layer in given["layers"]]
    if "temporary" in given:
        options["temporary"] = given["temporary"]
    if "cache_size" in given:
        options["cache_size"] = parse_size(given["cache_size"])
    if "index" in given:
        options["index"] = int(given["index"])
    return copy.deepcopy({
        "target": normalise_path(mount["target"]),
        "type": mount["type"],
        "source": mount.get("source"),
        "options": options,
    })
