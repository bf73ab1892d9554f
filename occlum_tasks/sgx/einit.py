"""The emulated EINIT: the checks the CPU makes before an enclave may run.

On hardware, EINIT takes the SIGSTRUCT the loader hands in and refuses the enclave
unless the signature is valid, the enclave's measurement equals the signed ENCLAVEHASH,
and the enclave's attributes and MISCSELECT agree with the signed ones under the
signed masks. Afterwards the enclave has an identity (MRENCLAVE, MRSIGNER, ISVPRODID,
ISVSVN, attributes) that reports and key derivation use.

occlum-py has no loader that builds pages: it re-measures the layout
(build/lib/enclave.layout) with the two measured inputs (the runtime manifest and the
config MAC), exactly as the build measured them (sgx/measurement.py).

The attributes an SGX loader asks for (SECS.ATTRIBUTES) come from the enclave's own
metadata. Here that metadata is the protected config, whose MAC sits in the measured
config page: so EINIT opens it too, once MRENCLAVE has matched (from then on the MAC
is trusted), and takes DEBUG and KSS from its `metadata`. The attribute check thus
ensures that the runtime's notion of "debuggable" is the one that was signed.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from ..errors import IntegrityError, SignError
from ..paths import LAYOUT, RUNTIME_MANIFEST, SIGSTRUCT, SYS_MAC, SYS_PROTECTED
from .keys import PLATFORM_CPUSVN
from .layout import EnclaveLayout
from .measurement import measure

# How messages name the inputs: their paths relative to the instance folder.
DEFAULT_NAMES = {
    "sigstruct": SIGSTRUCT.as_posix(),
    "layout": LAYOUT.as_posix(),
    "manifest": RUNTIME_MANIFEST.as_posix(),
    "config_mac": SYS_MAC.as_posix(),
    "config": SYS_PROTECTED.as_posix(),
}
MISCSELECT = 0          # the emulated enclave asks for no extra SSA information
CONFIGID_SIZE = 64


@dataclass(frozen=True)
class EnclaveIdentity:
    """What an initialised enclave is, as REPORT and EGETKEY see it."""

    mrenclave: bytes
    mrsigner: bytes
    attributes: int          # ATTRIBUTES.FLAGS after EINIT (INIT set)
    xfrm: int
    miscselect: int
    isvprodid: int
    isvsvn: int
    isvfamilyid: bytes = bytes(16)
    isvextprodid: bytes = bytes(16)
    configid: bytes = bytes(CONFIGID_SIZE)
    configsvn: int = 0
    cpusvn: bytes = field(default=PLATFORM_CPUSVN)

    @property
    def debug(self) -> bool:
        return bool(self.attributes & 0x2)

    @property
    def kss(self) -> bool:
        return bool(self.attributes & 0x80)

    def to_dict(self) -> dict:
        """JSON-friendly: bytes as hex."""
        return {k: (v.hex() if isinstance(v, bytes) else v) for k, v in self.__dict__.items()}


def secs_attributes(metadata) -> tuple[int, int]:
    """(FLAGS, XFRM) the enclave runs with, from the config's metadata, INIT included."""
    from .attributes import FLAG_INIT
    from .sigstruct import enclave_attributes
    flags, xfrm = enclave_attributes(metadata)
    return flags | FLAG_INIT, xfrm


def _measurement_hints(manifest: bytes, config_mac: bytes, protected_config: bytes,
                       current_manifest: bytes | None, names: dict) -> str:
    """Which input most likely changed, when MRENCLAVE does not match: the manifest if
    it no longer describes the runtime installed, the MAC file if it no longer matches
    the protected config. Only a hint: nothing here is trusted."""
    from ..config.sysconf import mac_of
    suspects = []
    if current_manifest is not None and manifest != current_manifest:
        suspects.append(f"{names['manifest']} does not describe the installed runtime")
    if not hmac.compare_digest(mac_of(protected_config), bytes(config_mac)):
        suspects.append(f"{names['config_mac']} does not match {names['config']}")
    return "; ".join(suspects)


def check_measurement(sig, layout: EnclaveLayout, manifest: bytes, config_mac: bytes,
                      protected_config: bytes, current_manifest: bytes | None,
                      names: dict) -> bytes:
    """Re-measure the enclave and compare with the signed ENCLAVEHASH; return MRENCLAVE."""
    inputs = f"{names['layout']}, {names['manifest']} and {names['config_mac']}"
    try:
        mrenclave = measure(layout, manifest, config_mac)
    except IntegrityError as exc:
        # the layout was made for another manifest or MAC length: one of them changed
        hints = _measurement_hints(manifest, config_mac, protected_config, current_manifest, names)
        raise IntegrityError(f"{names['sigstruct']}: MRENCLAVE does not match the enclave "
                             f"({exc}; {hints or 'one of ' + inputs + ' was changed'})") from None
    if not hmac.compare_digest(mrenclave, sig["mrenclave"]):
        hints = _measurement_hints(manifest, config_mac, protected_config, current_manifest, names)
        raise IntegrityError(
            f"{names['sigstruct']}: MRENCLAVE does not match the enclave (signed "
            f"{sig['mrenclave'].hex()[:16]}..., measured {mrenclave.hex()[:16]}... from "
            f"{inputs}; {hints or 'one of them was changed after signing'})")
    return mrenclave


def check_attributes(sig, flags: int, xfrm: int, miscselect: int, names: dict) -> None:
    """EINIT's mask rule: (mask & enclave's) == (mask & signed), for FLAGS, XFRM and
    MISCSELECT."""
    mask = sig["attributemask"]
    if mask & flags != mask & sig["attributes"]:
        differ = (flags ^ sig["attributes"]) & mask
        why = ""
        if differ & 0x2:
            why = (" (the config says the enclave is debuggable, the SIGSTRUCT is signed for "
                   "a production enclave)" if flags & 0x2 else
                   " (the SIGSTRUCT is signed for a debug enclave, the config says it is not "
                   "debuggable)")
        raise SignError(f"{names['sigstruct']}: ATTRIBUTES {sig['attributes']:#x} do not match "
                        f"the enclave's {flags:#x} under ATTRIBUTEMASK {mask:#x}{why}")
    if sig["xfrmmask"] & xfrm != sig["xfrmmask"] & sig["xfrm"]:
        raise SignError(f"{names['sigstruct']}: XFRM {sig['xfrm']:#x} does not match the "
                        f"enclave's {xfrm:#x} under the mask {sig['xfrmmask']:#x}")
    if sig["miscmask"] & miscselect != sig["miscmask"] & sig["miscselect"]:
        raise SignError(f"{names['sigstruct']}: MISCSELECT {sig['miscselect']:#x} does not "
                        f"match the enclave's {miscselect:#x}")


def einit(sigstruct: bytes, layout: EnclaveLayout, manifest: bytes, config_mac: bytes,
          protected_config: bytes, *, current_manifest: bytes | None = None,
          config_id: bytes | None = None, config_svn: int = 0,
          names: dict | None = None) -> tuple[EnclaveIdentity, dict]:
    """Initialise the enclave: (its identity, the verified internal config).

    In order: the SIGSTRUCT's own checks (signature, Q1/Q2, constant fields); the
    measurement of ``layout`` with ``manifest`` and ``config_mac`` against ENCLAVEHASH;
    the protected config against the now-trusted ``config_mac``; the attributes it asks
    for against the signed ones. ``current_manifest`` (the manifest of the runtime
    installed) only sharpens the message when MRENCLAVE does not match. ``config_id``
    and ``config_svn`` are SECS.CONFIGID/CONFIGSVN (`occlum run --config-id`), which
    SGX allows only with KSS. Each failure is one line naming the file.
    """
    from ..config.sysconf import decode
    from .sigstruct import verify_sigstruct
    names = dict(DEFAULT_NAMES, **(names or {}))
    sig = verify_sigstruct(sigstruct, what=names["sigstruct"])
    mrenclave = check_measurement(sig, layout, manifest, config_mac, protected_config,
                                  current_manifest, names)
    config = decode(bytes(protected_config), bytes(config_mac), name=names["config"])
    metadata = config.get("metadata") if isinstance(config, dict) else None
    if not isinstance(metadata, dict):
        raise IntegrityError(f"{names['config']}: the measured config has no metadata "
                             "(built by another version of occlum-py?)")
    flags, xfrm = secs_attributes(metadata)
    check_attributes(sig, flags, xfrm, MISCSELECT, names)
    kss = bool(flags & 0x80)
    config_id = bytes(CONFIGID_SIZE) if config_id is None else bytes(config_id)
    if len(config_id) != CONFIGID_SIZE:
        raise SignError(f"CONFIGID: {len(config_id)} bytes, expected {CONFIGID_SIZE}")
    if (any(config_id) or config_svn) and not kss:
        raise SignError("CONFIGID/CONFIGSVN need KSS: set metadata.enable_kss in Occlum.json")
    if not 0 <= config_svn <= 0xFFFF:
        raise SignError(f"CONFIGSVN {config_svn} is not a 16-bit number")
    identity = EnclaveIdentity(
        mrenclave=mrenclave, mrsigner=sig["mrsigner"], attributes=flags, xfrm=xfrm,
        miscselect=MISCSELECT, isvprodid=sig["isvprodid"], isvsvn=sig["isvsvn"],
        # without KSS the CPU ignores the signed ids (they are zero anyway)
        isvfamilyid=sig["isvfamilyid"] if kss else bytes(16),
        isvextprodid=sig["isvextprodid"] if kss else bytes(16),
        configid=config_id, configsvn=config_svn)
    return identity, config
