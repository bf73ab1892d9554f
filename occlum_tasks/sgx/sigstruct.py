"""SIGSTRUCT: the 1808-byte enclave signature structure (build, sign, parse, verify).

EINIT accepts an enclave only with a SIGSTRUCT whose RSA-3072 (e = 3) signature covers
bytes 0-127 and 900-1027, and whose ENCLAVEHASH equals the measured MRENCLAVE. The
signer's modulus, the signature and the two helper values Q1 and Q2 (which let the CPU
check s^3 mod n without a division) are little-endian. Formats: docs/sgx-facts.md;
our choices (attribute mask, KSS ids, date): docs/enclave-formats.md.
"""
from __future__ import annotations

import datetime
import hashlib
import os
from typing import Mapping

from cryptography.hazmat.primitives.asymmetric import rsa

from ..errors import SignError
from .fields import FieldTable, int_to_le, le_to_int
from .signing import (RSA_EXPONENT, RSA_KEY_BITS, RSA_KEY_BYTES, as_signer,
                      is_debug_key, verify_signature)

SIGSTRUCT_SIZE = 1808

SIGSTRUCT = FieldTable("SIGSTRUCT", SIGSTRUCT_SIZE, [
    ("header", 0, "16s"),
    ("vendor", 16, "I"),
    ("date", 20, "I"),              # BCD yyyymmdd
    ("header2", 24, "16s"),
    ("swdefined", 40, "I"),
    ("reserved1", 44, "84s"),
    ("modulus", 128, "384s"),       # little-endian
    ("exponent", 512, "I"),
    ("signature", 516, "384s"),     # little-endian
    ("miscselect", 900, "I"),
    ("miscmask", 904, "I"),
    ("reserved2", 908, "4s"),       # CET attributes on newer parts; unused here
    ("isvfamilyid", 912, "16s"),
    ("attributes", 928, "Q"),       # ATTRIBUTES.FLAGS
    ("xfrm", 936, "Q"),             # ATTRIBUTES.XFRM
    ("attributemask", 944, "Q"),    # ATTRIBUTEMASK.FLAGS
    ("xfrmmask", 952, "Q"),         # ATTRIBUTEMASK.XFRM
    ("enclavehash", 960, "32s"),    # MRENCLAVE
    ("reserved3", 992, "16s"),
    ("isvextprodid", 1008, "16s"),
    ("isvprodid", 1024, "H"),
    ("isvsvn", 1026, "H"),
    ("reserved4", 1028, "12s"),
    ("q1", 1040, "384s"),
    ("q2", 1424, "384s"),
])
SIGNED_SPANS = (slice(0, 128), slice(900, 1028))   # the 256-byte signed message

HEADER = bytes.fromhex("06000000E10000000000010000000000")
HEADER2 = bytes.fromhex("01010000600000006000000001000000")
VENDOR_OTHER = 0
VENDOR_INTEL = 0x8086

# ATTRIBUTES.FLAGS bits
from .attributes import (FLAG_DEBUG, FLAG_EINITTOKENKEY, FLAG_KSS, FLAG_MODE64BIT,
                         FLAG_PROVISIONKEY)
XFRM_LEGACY = 0x3        # x87 | SSE: the emulated CPU has no AVX (DESIGN.md section 8)

# The mask names the bits EINIT compares with the enclave's own attributes. It covers
# every bit that changes what the enclave is allowed or trusted to do: DEBUG (a debug
# and a production enclave must never be mistaken for each other), MODE64BIT, the two
# privileged key bits (an Occlum enclave asks for neither) and KSS. INIT is left out
# because the CPU sets it during EINIT. For XFRM only x87 and SSE are required; other
# features may be enabled by the loader without breaking the signature.
ATTRIBUTEMASK_FLAGS = (FLAG_DEBUG | FLAG_MODE64BIT | FLAG_PROVISIONKEY
                       | FLAG_EINITTOKENKEY | FLAG_KSS)
ATTRIBUTEMASK_XFRM = XFRM_LEGACY
MISCSELECT = 0
MISCMASK = 0xFFFFFFFF    # as the SGX SDK: MISCSELECT must match exactly

DEFAULT_DATE = datetime.date(2026, 1, 1)


# --- field values from Occlum.json's metadata --------------------------------------

def enclave_attributes(metadata: Mapping) -> tuple[int, int]:
    """(ATTRIBUTES.FLAGS, ATTRIBUTES.XFRM) of an enclave with this ``metadata``."""
    flags = FLAG_MODE64BIT
    if metadata.get("debuggable", True):
        flags |= FLAG_DEBUG
    if metadata.get("enable_kss", False):
        flags |= FLAG_KSS
    return flags, XFRM_LEGACY


def _u64(value, where: str) -> int:
    if isinstance(value, str):
        try:
            value = int(value, 0)
        except ValueError:
            raise SignError(f"metadata.{where}: {value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
        raise SignError(f"metadata.{where}: {value!r} does not fit in 64 bits")
    return value


def kss_id(pair, where: str) -> bytes:
    """ISVFAMILYID / ISVEXTPRODID: Occlum's {"high", "low"} as 16 bytes, the low u64
    then the high u64, each little-endian (the 128-bit value, little-endian)."""
    if pair is None:
        return bytes(16)
    if not isinstance(pair, Mapping):
        raise SignError(f"metadata.{where}: expected {{\"high\": \"0x..\", \"low\": \"0x..\"}}")
    low = _u64(pair.get("low", 0), where + ".low")
    high = _u64(pair.get("high", 0), where + ".high")
    return low.to_bytes(8, "little") + high.to_bytes(8, "little")


def _u16(metadata: Mapping, name: str) -> int:
    value = metadata.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise SignError(f"metadata.{name}: {value!r} must be an integer from 0 to 65535")
    return value


def bcd_date(date: datetime.date) -> int:
    """2026-01-01 -> 0x20260101 (each decimal digit in one nibble)."""
    return int(f"{date.year:04d}{date.month:02d}{date.day:02d}", 16)


def date_from_bcd(value: int) -> datetime.date:
    digits = f"{value:08x}"
    try:
        return datetime.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        raise SignError(f"SIGSTRUCT DATE {value:#010x} is not a BCD date") from None


def sigstruct_date(date=None) -> int:
    """The DATE field: ``date`` if given (a date, or "YYYY-MM-DD" / "YYYYMMDD"), else
    SOURCE_DATE_EPOCH (the reproducible-builds convention, read in UTC), else 2026-01-01.
    Never today's date, so that two builds of one instance are byte-identical."""
    if date is None:
        epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
        if epoch:
            try:
                date = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).date()
            except (ValueError, OverflowError, OSError):
                raise SignError(f"SOURCE_DATE_EPOCH={epoch!r} is not a Unix time in seconds") from None
        else:
            date = DEFAULT_DATE
    elif isinstance(date, str):
        text = date.strip().replace("-", "")
        try:
            date = datetime.date(int(text[:4]), int(text[4:6]), int(text[6:]))
            if len(text) != 8:
                raise ValueError
        except ValueError:
            raise SignError(f"SIGSTRUCT date {date!r}: expected YYYY-MM-DD") from None
    elif isinstance(date, datetime.datetime):
        date = date.date()
    if not isinstance(date, datetime.date) or not 1 <= date.year <= 9999:
        raise SignError(f"SIGSTRUCT date {date!r}: expected a date")
    return bcd_date(date)


# --- build and sign ------------------------------------------------------------------

def signed_message(blob: bytes) -> bytes:
    """The 256 bytes EINIT verifies: bytes 0-127 then bytes 900-1027."""
    return b"".join(blob[span] for span in SIGNED_SPANS)


def q1_q2(signature: int, modulus: int) -> tuple[int, int]:
    """EINIT's helpers: Q1 = s^2 // n and Q2 = ((s^2 mod n) * s) // n."""
    q1, rest = divmod(signature * signature, modulus)
    return q1, (rest * signature) // modulus


def make_sigstruct(mrenclave: bytes, metadata: Mapping, signer, date=None, *,
                   miscselect: int = MISCSELECT, miscmask: int = MISCMASK,
                   vendor: int = VENDOR_OTHER, swdefined: int = 0) -> bytes:
    """Build and sign the SIGSTRUCT of an enclave.

    ``metadata`` is Occlum.json's resolved ``metadata`` object (or the whole resolved
    config, whose ``metadata`` is then used): debuggable, product_id, version_number,
    enable_kss, family_id, ext_prod_id. ``signer`` is an RSA private key, a KeySigner,
    a SignTool or a key file path. A non-debuggable enclave is refused with the shipped
    debug key.
    """
    if len(mrenclave) != 32:
        raise SignError(f"MRENCLAVE must be 32 bytes, got {len(mrenclave)}")
    if "metadata" in metadata and isinstance(metadata["metadata"], Mapping):
        metadata = metadata["metadata"]
    signer = as_signer(signer)
    debuggable = bool(metadata.get("debuggable", True))
    if not debuggable and is_debug_key(signer):
        raise SignError("Occlum.json: metadata.debuggable is false but the enclave would be "
                        "signed with "
                        "the shipped debug key, whose private half everybody has: give "
                        "--sign-key with your own RSA-3072 key (exponent 3)")
    flags, xfrm = enclave_attributes(metadata)
    kss = bool(metadata.get("enable_kss", False))
    # Without KSS the CPU ignores these ids; zero them so that a family_id left in
    # Occlum.json cannot change the signed bytes of a non-KSS enclave.
    family = kss_id(metadata.get("family_id"), "family_id") if kss else bytes(16)
    ext_prod = kss_id(metadata.get("ext_prod_id"), "ext_prod_id") if kss else bytes(16)
    public = signer.public_key().public_numbers()
    values = {
        "header": HEADER, "vendor": vendor, "date": sigstruct_date(date),
        "header2": HEADER2, "swdefined": swdefined,
        "modulus": int_to_le(public.n, RSA_KEY_BYTES), "exponent": public.e,
        "miscselect": miscselect, "miscmask": miscmask,
        "isvfamilyid": family, "attributes": flags, "xfrm": xfrm,
        "attributemask": ATTRIBUTEMASK_FLAGS, "xfrmmask": ATTRIBUTEMASK_XFRM,
        "enclavehash": bytes(mrenclave), "isvextprodid": ext_prod,
        "isvprodid": _u16(metadata, "product_id"), "isvsvn": _u16(metadata, "version_number"),
    }
    unsigned = SIGSTRUCT.pack(values)
    message = signed_message(unsigned)
    signature_be = signer.sign(message)
    # A KeySigner cannot produce a bad signature, but a signer object passed in can;
    # checking here keeps a wrong SIGSTRUCT from ever being written.
    if len(signature_be) != RSA_KEY_BYTES or not verify_signature(signer.public_key(),
                                                                  message, signature_be):
        raise SignError(f"{getattr(signer, 'source', 'signer')}: produced a signature "
                        "that does not verify with its public key")
    s = int.from_bytes(signature_be, "big")
    q1, q2 = q1_q2(s, public.n)
    values.update(signature=int_to_le(s, RSA_KEY_BYTES), q1=int_to_le(q1, RSA_KEY_BYTES),
                  q2=int_to_le(q2, RSA_KEY_BYTES))
    return SIGSTRUCT.pack(values)


# --- read and check ------------------------------------------------------------------

class SigStructInfo(dict):
    """parse_sigstruct's result: a dict whose keys also read as attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def parse_sigstruct(blob: bytes, what: str = "SIGSTRUCT") -> SigStructInfo:
    """Decode every field. Numbers stay as stored (``modulus``, ``signature``, ``q1``,
    ``q2`` little-endian bytes); also gives ``mrenclave``, ``mrsigner``, ``debug``,
    ``kss``, ``date_iso`` and ``message`` (the signed 256 bytes). Checks nothing but
    the size; verify_sigstruct checks."""
    blob = bytes(blob)
    if len(blob) != SIGSTRUCT_SIZE:
        raise SignError(f"{what}: {len(blob)} bytes, a SIGSTRUCT is {SIGSTRUCT_SIZE}")
    info = SigStructInfo((k, v) for k, v in SIGSTRUCT.unpack(blob).items()
                         if not k.startswith("reserved"))
    info["mrenclave"] = info["enclavehash"]
    info["mrsigner"] = hashlib.sha256(info["modulus"]).digest()
    info["debug"] = bool(info["attributes"] & FLAG_DEBUG)
    info["kss"] = bool(info["attributes"] & FLAG_KSS)
    digits = f"{info['date']:08x}"
    info["date_iso"] = f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"
    info["message"] = signed_message(blob)
    return info


def mrsigner_of(blob: bytes) -> bytes:
    """MRSIGNER: SHA-256 of the 384-byte little-endian modulus as stored."""
    if len(blob) != SIGSTRUCT_SIZE:
        raise SignError(f"SIGSTRUCT: {len(blob)} bytes, expected {SIGSTRUCT_SIZE}")
    return hashlib.sha256(bytes(blob[SIGSTRUCT["modulus"].span])).digest()


def public_key_of_sigstruct(blob: bytes) -> rsa.RSAPublicKey:
    info = parse_sigstruct(blob)
    return rsa.RSAPublicNumbers(info["exponent"], le_to_int(info["modulus"])).public_key()


def verify_sigstruct(blob: bytes, *, mrenclave: bytes | None = None,
                     mrsigner: bytes | None = None, what: str = "SIGSTRUCT") -> SigStructInfo:
    """Check what EINIT checks; return the parsed fields or raise a one-line SignError.

    Checks the size, both header constants, the reserved fields, the exponent and key
    size, the signature over the 256-byte message, Q1 and Q2, the DATE encoding, and,
    when given, the expected MRENCLAVE and MRSIGNER.
    """
    info = parse_sigstruct(blob, what)
    fields = SIGSTRUCT.unpack(bytes(blob))
    if info["header"] != HEADER:
        raise SignError(f"{what}: HEADER is {info['header'].hex()}, expected {HEADER.hex()}")
    if info["header2"] != HEADER2:
        raise SignError(f"{what}: HEADER2 is {info['header2'].hex()}, expected {HEADER2.hex()}")
    if info["vendor"] not in (VENDOR_OTHER, VENDOR_INTEL):
        raise SignError(f"{what}: VENDOR {info['vendor']:#x} is neither 0 nor 0x8086")
    for name, value in fields.items():
        if name.startswith("reserved") and any(value):
            field = SIGSTRUCT[name]
            raise SignError(f"{what}: reserved bytes {field.offset}-{field.end - 1} are not zero")
    date_from_bcd(info["date"])
    if info["exponent"] != RSA_EXPONENT:
        raise SignError(f"{what}: EXPONENT is {info['exponent']}, SGX requires 3")
    n = le_to_int(info["modulus"])
    if n.bit_length() != RSA_KEY_BITS or n % 2 == 0:
        raise SignError(f"{what}: MODULUS is not an RSA-3072 modulus")
    s = le_to_int(info["signature"])
    if s >= n:
        raise SignError(f"{what}: SIGNATURE is not smaller than the modulus")
    public = rsa.RSAPublicNumbers(RSA_EXPONENT, n).public_key()
    if not verify_signature(public, info["message"], s.to_bytes(RSA_KEY_BYTES, "big")):
        raise SignError(f"{what}: the signature does not match the signed fields "
                        "(bytes 0-127 and 900-1027 were changed, or another key signed)")
    q1, q2 = q1_q2(s, n)
    if le_to_int(info["q1"]) != q1:
        raise SignError(f"{what}: Q1 does not match the signature and modulus")
    if le_to_int(info["q2"]) != q2:
        raise SignError(f"{what}: Q2 does not match the signature and modulus")
    if mrenclave is not None and info["mrenclave"] != bytes(mrenclave):
        raise SignError(f"{what}: signed for MRENCLAVE {info['mrenclave'].hex()}, but the "
                        f"enclave measures {bytes(mrenclave).hex()}")
    if mrsigner is not None and info["mrsigner"] != bytes(mrsigner):
        raise SignError(f"{what}: signed by MRSIGNER {info['mrsigner'].hex()}, expected "
                        f"{bytes(mrsigner).hex()}")
    return info
