"""The emulated platform secret and EGETKEY: the keys an enclave can ask the CPU for.

On hardware, EGETKEY derives keys from a secret fused into the CPU and the identity of
the calling enclave, so that only the same enclave (or enclaves of the same signer,
as the key policy says) on the same CPU gets the same key. occlum-py has no fused key:
each host user gets one random secret, kept in a file only that user can read. What
the file protects is what the CPU's fuses protect: another host, or another user, has
another secret and derives other keys.

The derivation follows the SDM's rules for which identity fields a key depends on
(docs/sgx-facts.md, "Keys (EGETKEY)"); the byte string that is MACed is occlum-py's
own and is fixed in docs/enclave-formats.md ("Platform secret and sealing keys").
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import OcclumError
from .fields import FieldTable

# KEYREQUEST.KEYNAME
KEY_EINITTOKEN = 0
KEY_PROVISION = 1
KEY_PROVISION_SEAL = 2
KEY_REPORT = 3
KEY_SEAL = 4
KEY_NAMES = {KEY_EINITTOKEN: "EINITTOKEN", KEY_PROVISION: "PROVISION",
             KEY_PROVISION_SEAL: "PROVISION_SEAL", KEY_REPORT: "REPORT", KEY_SEAL: "SEAL"}

# KEYREQUEST.KEYPOLICY
POLICY_MRENCLAVE = 0x1
POLICY_MRSIGNER = 0x2
POLICY_NOISVPRODID = 0x4
POLICY_CONFIGID = 0x8
POLICY_ISVFAMILYID = 0x10
POLICY_ISVEXTPRODID = 0x20
POLICY_KNOWN = 0x3F
# Bits that select identity fields only a KSS enclave has; EGETKEY refuses them
# otherwise, as the CPU does (#GP).
POLICY_KSS_ONLY = POLICY_NOISVPRODID | POLICY_CONFIGID | POLICY_ISVFAMILYID | POLICY_ISVEXTPRODID

# ATTRIBUTES.FLAGS bits
from .attributes import (FLAG_DEBUG, FLAG_EINITTOKENKEY, FLAG_INIT, FLAG_KSS,  # noqa: F401
                         FLAG_MODE64BIT, FLAG_PROVISIONKEY)
# INIT and DEBUG always take part in a key, whatever mask the request gives: a debug
# enclave, whose memory a debugger can read, must never obtain a production key.
ALWAYS_IN_KEY = FLAG_INIT | FLAG_DEBUG
# The mask occlum-py asks with by default: every flag that changes what the enclave is
# trusted with, so that a key follows the enclave's kind as well as its identity.
DEFAULT_ATTRIBUTE_MASK = (FLAG_INIT | FLAG_DEBUG | FLAG_MODE64BIT | FLAG_PROVISIONKEY
                          | FLAG_EINITTOKENKEY | FLAG_KSS)
DEFAULT_XFRM_MASK = 0          # keys do not change with the CPU features the loader enables
DEFAULT_MISC_MASK = 0xFFFFFFFF

# The emulated CPU's security version (16 bytes, one security version per component,
# compared component by component). A request may name this or an older CPUSVN.
PLATFORM_CPUSVN = bytes([1]) + bytes(15)
# OWNEREPOCH: set by the platform owner on hardware, to make all keys change when a
# machine changes hands. The emulation has no owner: zero. (A new platform secret is
# the emulated way to start over.)
OWNER_EPOCH = bytes(16)

SECRET_SIZE = 16               # the AES-128 key that every derivation is a CMAC under
SECRET_FILE_ENV = "OCCLUM_PLATFORM_SECRET_FILE"
DEFAULT_SECRET_FILE = Path("~/.local/share/occlum-py/platform-secret")

# The KEYID the writable layer's key is requested with. Fixed, so that every run (and
# every rebuild with the same signing key) derives the same key; an ASCII label, so a
# reader of the spec recognises it.
WRITABLE_LAYER_KEYID = b"occlum-py writable layer key v1".ljust(32, b"\0")
# The CPUSVN that key is requested at: fixed (not "the platform's current"), so that a
# later emulated CPU with a higher CPUSVN still derives the same key, as sealed data on
# hardware records the CPUSVN it was sealed at.
WRITABLE_LAYER_CPUSVN = PLATFORM_CPUSVN

# What is MACed: occlum-py's fixed layout of the values the key depends on. A field a
# request does not select is zero.
KEY_DERIVATION = FieldTable("EGETKEY derivation data", 320, [
    ("magic", 0, "16s"),           # DERIVATION_MAGIC
    ("keyname", 16, "H"),
    ("keypolicy", 18, "H"),
    ("miscselect", 20, "I"),       # MISCSELECT & misc mask
    ("attributes", 24, "Q"),       # ATTRIBUTES.FLAGS & (mask | INIT | DEBUG)
    ("xfrm", 32, "Q"),             # ATTRIBUTES.XFRM & xfrm mask
    ("isvsvn", 40, "H"),           # the requested ISVSVN
    ("isvprodid", 42, "H"),        # zero with NOISVPRODID
    ("configsvn", 44, "H"),        # the requested CONFIGSVN, with CONFIGID only
    ("reserved1", 46, "2s"),
    ("owner_epoch", 48, "16s"),
    ("cpusvn", 64, "16s"),         # the requested CPUSVN
    ("mrenclave", 80, "32s"),      # with MRENCLAVE only
    ("mrsigner", 112, "32s"),      # with MRSIGNER only
    ("isvfamilyid", 144, "16s"),   # with ISVFAMILYID only
    ("isvextprodid", 160, "16s"),  # with ISVEXTPRODID only
    ("configid", 176, "64s"),      # with CONFIGID only
    ("keyid", 240, "32s"),
    ("reserved2", 272, "48s"),
])
DERIVATION_MAGIC = b"OCCLUMPY-EGETKEY"


class EGetKeyError(OcclumError):
    """A key request the CPU would refuse; ``code`` is the SGX error's name."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


# --- the platform secret ------------------------------------------------------------

def secret_path(env=None) -> Path:
    """Where this user's platform secret lives: $OCCLUM_PLATFORM_SECRET_FILE, else
    ~/.local/share/occlum-py/platform-secret."""
    env = os.environ if env is None else env
    return Path(env.get(SECRET_FILE_ENV) or DEFAULT_SECRET_FILE).expanduser()


def platform_secret(path=None) -> bytes:
    """This host user's platform secret, created on first use.

    Creation is atomic: the secret is written in full to a temporary file, which is
    then hard-linked to its name; link() fails if the name exists, so when two runs
    race, one secret wins and both use it, and no reader ever sees a partial file.
    """
    path = secret_path() if path is None else Path(path).expanduser()
    secret = _read_secret(path)
    if secret is None:
        _create_secret(path)
        secret = _read_secret(path)
        if secret is None:
            raise OcclumError(f"platform secret {path}: was created but has disappeared")
    return secret


def _read_secret(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OcclumError(f"platform secret {path}: cannot read it: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not _is_regular(st.st_mode):
            raise OcclumError(f"platform secret {path}: is not a regular file")
        if st.st_uid != os.getuid():
            raise OcclumError(f"platform secret {path}: belongs to user {st.st_uid}, "
                              f"not to you ({os.getuid()})")
        if st.st_mode & 0o077:
            raise OcclumError(f"platform secret {path}: other users may access it (mode "
                              f"{st.st_mode & 0o777:04o}); `chmod 600` it, or delete it to "
                              "start a new platform (whose keys cannot read old sealed data)")
        data = os.read(fd, SECRET_SIZE + 1)
    finally:
        os.close(fd)
    if len(data) != SECRET_SIZE:
        raise OcclumError(f"platform secret {path}: {len(data)} bytes, expected "
                          f"{SECRET_SIZE}; delete it to start a new platform (whose keys "
                          "cannot read data sealed with the old one)")
    return data


def _is_regular(mode: int) -> bool:
    import stat
    return stat.S_ISREG(mode)


def _create_secret(path: Path) -> None:
    import tempfile
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")   # mode 0600
    except OSError as exc:
        raise OcclumError(f"platform secret {path}: cannot create it: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(SECRET_SIZE))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass                       # another run created it first: use that one
        except OSError:
            # a file system without hard links: O_EXCL still lets only one run create
            # the name (a reader racing with the write may then see a short file once)
            _create_exclusive(path)
    finally:
        os.unlink(tmp)
    _sync_folder(path.parent)


def _create_exclusive(path: Path) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(SECRET_SIZE))
        f.flush()
        os.fsync(f.fileno())


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- EGETKEY -----------------------------------------------------------------------------

def _newer_cpusvn(requested: bytes, current: bytes) -> bool:
    """True if any component of ``requested`` is above the platform's."""
    return any(r > c for r, c in zip(requested, current))


def derivation_data(identity, key_name: int, key_policy: int = POLICY_MRSIGNER,
                    isvsvn: int | None = None, cpusvn: bytes | None = None,
                    keyid: bytes = bytes(32), *, attribute_mask: int = DEFAULT_ATTRIBUTE_MASK,
                    xfrm_mask: int = DEFAULT_XFRM_MASK, misc_mask: int = DEFAULT_MISC_MASK,
                    configsvn: int | None = None) -> bytes:
    """The bytes EGETKEY MACs for this request, after checking it as the CPU does.

    ``identity`` is the calling enclave's (einit.EnclaveIdentity). ``isvsvn``,
    ``cpusvn`` and ``configsvn`` default to the enclave's own; older ones may be asked
    for (to read data sealed by an older version), newer ones are refused.
    """
    kss = bool(identity.attributes & FLAG_KSS)
    name = KEY_NAMES.get(key_name)
    if name is None:
        raise EGetKeyError("SGX_INVALID_KEYNAME", f"EGETKEY: unknown key name {key_name}")
    if key_name == KEY_EINITTOKEN and not identity.attributes & FLAG_EINITTOKENKEY:
        raise EGetKeyError("SGX_INVALID_ATTRIBUTE", "EGETKEY: the EINITTOKEN key needs the "
                           "EINITTOKENKEY attribute, which this enclave does not have")
    if key_name in (KEY_PROVISION, KEY_PROVISION_SEAL) and not identity.attributes & FLAG_PROVISIONKEY:
        raise EGetKeyError("SGX_INVALID_ATTRIBUTE", f"EGETKEY: the {name} key needs the "
                           "PROVISIONKEY attribute, which this enclave does not have")
    cpusvn = PLATFORM_CPUSVN if cpusvn is None else bytes(cpusvn)
    keyid = bytes(keyid)
    if len(cpusvn) != 16 or len(keyid) != 32:
        raise EGetKeyError("SGX_INVALID_PARAMETER", "EGETKEY: CPUSVN must be 16 bytes and "
                           "KEYID 32 bytes")
    if _newer_cpusvn(cpusvn, identity.cpusvn):
        raise EGetKeyError("SGX_INVALID_CPUSVN", f"EGETKEY: CPUSVN {cpusvn.hex()} is newer "
                           f"than the platform's {identity.cpusvn.hex()}")
    values = {"magic": DERIVATION_MAGIC, "keyname": key_name, "cpusvn": cpusvn,
              "owner_epoch": OWNER_EPOCH, "keyid": keyid}
    if key_name == KEY_REPORT:
        # The report key belongs to the enclave a REPORT targets; it depends on that
        # enclave's measurement and full attributes, never on a policy or an SVN.
        values.update(mrenclave=identity.mrenclave, attributes=identity.attributes,
                      xfrm=identity.xfrm, miscselect=identity.miscselect)
        if kss:
            values.update(configid=identity.configid, configsvn=identity.configsvn)
        return KEY_DERIVATION.pack(values)
    if key_policy & ~POLICY_KNOWN:
        raise EGetKeyError("SGX_INVALID_KEYPOLICY", f"EGETKEY: unknown key policy bits "
                           f"{key_policy & ~POLICY_KNOWN:#x}")
    if key_policy & POLICY_KSS_ONLY and not kss:
        raise EGetKeyError("SGX_INVALID_KEYPOLICY", "EGETKEY: key policy "
                           f"{key_policy:#x} names KSS fields, but the enclave has no KSS "
                           "(metadata.enable_kss)")
    isvsvn = identity.isvsvn if isvsvn is None else isvsvn
    if not 0 <= isvsvn <= 0xFFFF:
        raise EGetKeyError("SGX_INVALID_PARAMETER", f"EGETKEY: ISVSVN {isvsvn} is not 16 bits")
    if isvsvn > identity.isvsvn:
        raise EGetKeyError("SGX_INVALID_ISVSVN", f"EGETKEY: ISVSVN {isvsvn} is newer than the "
                           f"enclave's own ({identity.isvsvn})")
    values.update(keypolicy=key_policy, isvsvn=isvsvn,
                  attributes=identity.attributes & (attribute_mask | ALWAYS_IN_KEY),
                  xfrm=identity.xfrm & xfrm_mask,
                  miscselect=identity.miscselect & misc_mask)
    if not key_policy & POLICY_NOISVPRODID:
        values["isvprodid"] = identity.isvprodid
    if key_policy & POLICY_MRENCLAVE:
        values["mrenclave"] = identity.mrenclave
    if key_policy & POLICY_MRSIGNER:
        values["mrsigner"] = identity.mrsigner
    if key_policy & POLICY_ISVFAMILYID:
        values["isvfamilyid"] = identity.isvfamilyid
    if key_policy & POLICY_ISVEXTPRODID:
        values["isvextprodid"] = identity.isvextprodid
    if key_policy & POLICY_CONFIGID:
        configsvn = identity.configsvn if configsvn is None else configsvn
        if configsvn > identity.configsvn:
            raise EGetKeyError("SGX_INVALID_ISVSVN", f"EGETKEY: CONFIGSVN {configsvn} is "
                               f"newer than the enclave's own ({identity.configsvn})")
        values.update(configid=identity.configid, configsvn=configsvn)
    return KEY_DERIVATION.pack(values)


def egetkey(secret: bytes, identity, key_name: int, key_policy: int = POLICY_MRSIGNER,
            isvsvn: int | None = None, cpusvn: bytes | None = None,
            keyid: bytes = bytes(32), **masks) -> bytes:
    """The 16-byte key EGETKEY gives ``identity`` on the platform whose secret is
    ``secret``: AES-128-CMAC under the secret of derivation_data(...) (the SGX SDK's
    simulation mode derives with AES-128-CMAC too). ``masks``: attribute_mask,
    xfrm_mask, misc_mask, configsvn (see derivation_data)."""
    if len(secret) != SECRET_SIZE:
        raise ValueError(f"the platform secret must be {SECRET_SIZE} bytes")
    data = derivation_data(identity, key_name, key_policy, isvsvn, cpusvn, keyid, **masks)
    from cryptography.hazmat.primitives.ciphers import algorithms
    from cryptography.hazmat.primitives.cmac import CMAC
    mac = CMAC(algorithms.AES(bytes(secret)))
    mac.update(data)
    return mac.finalize()


# How a layer's key is derived from the enclave's, in run/.owner: a layer written under
# another scheme (before keys were bound to the mount: no `layer-key` field) cannot be
# read either, so the build moves it aside as it does for another owner.
LAYER_KEY_SCHEME = "per-mount"


def writable_layer_owner(mrsigner: bytes, isvprodid: int, isvsvn: int, debug: bool,
                         kss: bool) -> str:
    """Everything of the enclave that the writable layer's key derives from, as the
    line kept in run/.owner: the build moves run/ aside when it changes (the new
    enclave could not read it) and the launch refuses a layer of another owner."""
    return (f"mrsigner {bytes(mrsigner).hex()} isvprodid {isvprodid} isvsvn {isvsvn} "
            f"debug {int(bool(debug))} kss {int(bool(kss))} layer-key {LAYER_KEY_SCHEME}\n")


def writable_layer_key(secret: bytes, identity) -> bytes:
    """The key of the writable layer (run/mount/__ROOT): a SEAL key with the MRSIGNER
    policy at the enclave's own ISVSVN. A rebuild signed with the same key (any
    MRENCLAVE, same ISVPRODID and ISVSVN, same DEBUG bit) derives it again; another
    signer or another platform secret cannot. A new version_number changes it (the
    build then moves run/ aside; EGETKEY would let the newer enclave derive the old key,
    but nothing migrates a layer yet)."""
    return egetkey(secret, identity, KEY_SEAL, POLICY_MRSIGNER, identity.isvsvn,
                   WRITABLE_LAYER_CPUSVN, WRITABLE_LAYER_KEYID)
