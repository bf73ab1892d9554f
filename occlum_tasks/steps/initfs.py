"""Step `initfs`: the boot file system build/initfs/__ROOT. It tells the enclave's
init how to mount the image (encrypted or not) and, with --buildin-image-key, holds
the image key, which makes the key as secret as the build folder (as in Occlum,
where it lies inside the enclave file)."""
import json

from doit.tools import config_changed

from ..fsutil import remove_tree, write_atomic
from .common import BuildOptions, existing, step_action
from ..paths import INITFS_SRC
from .stage import INITFS_ROOT, INITFS_ROOT_MAC, with_outputs
from .image import clean_tree, encode_tree


def image_config(opts):
    return {"image_encrypted": bool(opts.image_key),
            "image_key_builtin": bool(opts.buildin_image_key)}


@step_action
def build_initfs():
    opts = BuildOptions()
    remove_tree(INITFS_SRC)     # links are removed, never followed (write_atomic makes etc/)
    etc = INITFS_SRC / "etc"
    write_atomic(etc / "image_config.json",
                 json.dumps(image_config(opts), sort_keys=True) + "\n")
    if opts.buildin_image_key:
        from ..image.keys import format_mac, read_image_key_file
        key = read_image_key_file(opts.image_key)
        write_atomic(etc / "image_key", format_mac(key) + "\n", mode=0o600)
    # a built-in key lies in plain text in initfs's node files: only the owner may read
    encode_tree(INITFS_SRC, INITFS_ROOT, INITFS_ROOT_MAC, None, None, "initfs",
                file_mode=0o600 if opts.buildin_image_key else 0o644)


def task_initfs():
    opts = BuildOptions()
    return with_outputs({
        "doc": "encode the boot file system (image config, built-in image key) into build/initfs/__ROOT",
        "actions": [build_initfs],
        "file_dep": existing(opts.image_key) if opts.buildin_image_key else [],
        "targets": [str(INITFS_ROOT_MAC)],
        "uptodate": [config_changed(image_config(opts))],
        "clean": [clean_tree(INITFS_ROOT, INITFS_ROOT_MAC, INITFS_SRC)],
    }, [INITFS_ROOT, INITFS_ROOT_MAC])
