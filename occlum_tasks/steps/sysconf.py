"""Step `sysconf`: the resolved config plus both root MACs -> build/.Occlum_sys.json,
its protected form, and the MAC that the enclave measures."""
import json

from ..config import sysconf
from ..fsutil import write_atomic
from .common import BuildOptions, kill_point, step_action
from .stage import (IMAGE_ROOT_MAC, INITFS_ROOT_MAC, RESOLVED_JSON, SYS_JSON, SYS_MAC,
                    SYS_PROTECTED, with_outputs)


@step_action
def write_sysconf():
    from ..image.keys import format_mac, parse_mac
    resolved = json.loads(RESOLVED_JSON.read_text())
    image_mac = parse_mac(IMAGE_ROOT_MAC.read_text())
    initfs_mac = parse_mac(INITFS_ROOT_MAC.read_text())
    # toggling encryption changes the image's root MAC, so this step re-runs then
    encrypted = bool(BuildOptions().image_key)
    conf = sysconf.make_sysconf(resolved, image_mac, initfs_mac, encrypted)
    text, protected, mac = sysconf.encode(conf)
    write_atomic(SYS_JSON, text)
    write_atomic(SYS_PROTECTED, protected)
    kill_point("inside:sysconf")
    write_atomic(SYS_MAC, format_mac(mac) + "\n")


def task_sysconf():
    return with_outputs({
        "doc": "fill the root MACs into the internal config build/.Occlum_sys.json and protect it",
        "actions": [write_sysconf],
        "file_dep": [str(RESOLVED_JSON), str(IMAGE_ROOT_MAC), str(INITFS_ROOT_MAC)],
        "targets": [str(SYS_JSON), str(SYS_PROTECTED), str(SYS_MAC)],
        "clean": True,
    }, [SYS_JSON, SYS_PROTECTED, SYS_MAC])
