"""The internal config (.Occlum_sys.json) and its protected form.

The build fills the root MACs of initfs and the image into the resolved config; the
result is stored as an integrity-protected file whose MAC is placed in a measured
enclave page. So MRENCLAVE covers the config, and through the root MACs, every byte
of the image. The format is a table of fields, documented in docs/formats.md.
"""
import hashlib
import json
import struct

from ..errors import IntegrityError

MAGIC = b"OCSYSCF1"
VERSION = 1
# offset, struct code, field
HEADER_FIELDS = (
    (0, "8s", "magic"),
    (8, "<I", "version"),
    (12, "<I", "body_size"),
    (16, "32s", "body_sha256"),
)
HEADER_SIZE = 48
MAC_SIZE = 16


def make_sysconf(resolved, image_root_mac, initfs_root_mac, image_encrypted):
    """The internal config: the resolved Occlum.json with the image layer's MAC
    filled in, plus the boot file system's root MAC."""
    from ..image.keys import format_mac
    conf = json.loads(json.dumps(resolved))  # deep copy
    root = [m for m in conf.get("mount", []) if m["target"] == "/" and m["type"] == "unionfs"]
    image_layers = [layer for m in root for layer in m["options"].get("layers", [])
                    if "MAC" in layer.get("options", {})]
    if len(image_layers) != 1:
        raise ValueError("the resolved config must have one unionfs at / with one image layer")
    # the build is the only place where the image's MAC becomes known
    image_layers[0]["options"]["MAC"] = format_mac(image_root_mac)
    conf["initfs"] = {"root_mac": format_mac(initfs_root_mac)}
    conf["image"] = {"root_mac": format_mac(image_root_mac), "encrypted": bool(image_encrypted)}
    return conf


def encode(conf):
    """(json text, protected bytes, mac). Canonical JSON keeps the bytes reproducible."""
    text = json.dumps(conf, indent=2, sort_keys=True) + "\n"
    body = text.encode()
    header = bytearray(HEADER_SIZE)
    values = {"magic": MAGIC, "version": VERSION, "body_size": len(body),
              "body_sha256": hashlib.sha256(body).digest()}
    for offset, code, name in HEADER_FIELDS:
        struct.pack_into(code, header, offset, values[name])
    protected = bytes(header) + body
    return text, protected, mac_of(protected)


def mac_of(protected):
    # keyless: its trust comes from MRENCLAVE, which measures this MAC
    return hashlib.sha256(b"occlum-py sysconf mac\0" + protected).digest()[:MAC_SIZE]


def decode(protected, expected_mac, name=".Occlum_sys.json.protected"):
    """Verify the protected config against the MAC taken from the measured enclave
    page, and return the config."""
    if mac_of(protected) != expected_mac:
        raise IntegrityError(f"{name}: does not match the config MAC measured into the enclave")
    fields = {name_: struct.unpack_from(code, protected, off)[0] for off, code, name_ in HEADER_FIELDS}
    body = protected[HEADER_SIZE:]
    if (fields["magic"] != MAGIC or fields["version"] != VERSION
            or fields["body_size"] != len(body)
            or fields["body_sha256"] != hashlib.sha256(body).digest()):
        raise IntegrityError(f"{name}: malformed protected config")
    return json.loads(body)
