"""Enclave signing keys: a PEM private key, or an external sign tool (HSM keys).

SGX accepts only RSA-3072 keys with public exponent 3 (EINIT verifies with e = 3 and
a 384-byte modulus), so every key is checked for that on load and the error names the
file. Both kinds of signer have the same two methods, which is all SIGSTRUCT needs:

    public_key() -> RSAPublicKey
    sign(message: bytes) -> bytes      # RSA PKCS#1 v1.5 SHA-256, 384 bytes, big-endian

A debug key ships in templates/ so that debug builds work out of the box; its private
half is public knowledge, so a production (``debuggable: false``) enclave must never be
signed with it: is_debug_key() lets the build refuse that.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
# serialization, x509 and the sign tool's process helpers load where they are used:
# `occlum run` only verifies a signature, and they cost ~70 ms of its start-up

from ..paths import TEMPLATES_DIR
from ..errors import SignError

RSA_KEY_BITS = 3072
RSA_KEY_BYTES = RSA_KEY_BITS // 8      # 384: modulus and signature size
RSA_EXPONENT = 3
DEBUG_KEY_NAME = "debug_signing_key.pem"
SIGN_TOOL_TIMEOUT = 300                # seconds; an HSM may ask an operator


def debug_key_path() -> Path:
    """The debug signing key shipped with occlum-py (for debuggable enclaves only)."""
    return TEMPLATES_DIR / DEBUG_KEY_NAME


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SignError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise SignError(f"{what} {path}: is a directory, not a PEM file") from None
    except OSError as exc:
        raise SignError(f"{what} {path}: cannot read it: {exc.strerror}") from None


def check_sgx_key(public: object, source: str) -> None:
    """Refuse anything but an RSA-3072 key with exponent 3; ``source`` names it."""
    if not isinstance(public, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        kind = re.sub(r"(Public|Private)Key$", "", type(public).__name__) or "unknown"
        raise SignError(f"{source}: not an RSA key ({kind}); SGX needs RSA-3072 with exponent 3")
    if public.key_size != RSA_KEY_BITS:
        raise SignError(f"{source}: RSA-{public.key_size} key; SGX needs RSA-3072 with exponent 3")
    numbers = (public.public_key() if isinstance(public, rsa.RSAPrivateKey)
               else public).public_numbers()
    if numbers.e != RSA_EXPONENT:
        raise SignError(f"{source}: public exponent {numbers.e}; SGX needs exponent 3 "
                        "(openssl genrsa -3 3072)")


def load_signing_key(path) -> rsa.RSAPrivateKey:
    """Read an unencrypted PEM RSA-3072 private key with exponent 3."""
    path = Path(path)
    what = "signing key"
    data = _read(path, what)
    try:
        # validating an RSA-3072 key costs ~0.2 s per build; make_sigstruct verifies
        # every signature it makes, which catches a damaged key as well
        from cryptography.hazmat.primitives import serialization
        key = serialization.load_pem_private_key(data, password=None,
                                                 unsafe_skip_rsa_key_validation=True)
    except TypeError:
        raise SignError(f"{what} {path}: the key is encrypted; give an unencrypted PEM "
                        "key, or keep the key in a signer and use --sign-tool") from None
    except (ValueError, UnsupportedAlgorithm):
        if b"PUBLIC KEY-----" in data or b"BEGIN CERTIFICATE" in data:
            hint = "it holds a public key, which signs only together with --sign-tool"
        else:
            hint = "not a PEM private key"
        raise SignError(f"{what} {path}: {hint}") from None
    check_sgx_key(key, f"{what} {path}")
    return key


def load_public_key(path) -> rsa.RSAPublicKey:
    """Read the public half of a signing key: a PEM public key (SubjectPublicKeyInfo or
    PKCS#1), a certificate, or a private key (its public half is taken)."""
    path = Path(path)
    what = "public key"
    data = _read(path, what)
    public = None
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    loaders = (serialization.load_pem_public_key,
               lambda d: x509.load_pem_x509_certificate(d).public_key(),
               lambda d: serialization.load_pem_private_key(d, password=None).public_key())
    for loader in loaders:
        try:
            public = loader(data)
            break
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
    if public is None:
        raise SignError(f"{what} {path}: not a PEM public key, certificate or "
                        "unencrypted private key")
    check_sgx_key(public, f"{what} {path}")
    return public


def public_key_of(key) -> rsa.RSAPublicKey:
    """The RSA public key of a private key, a public key or a signer."""
    if isinstance(key, rsa.RSAPublicKey):
        return key
    if hasattr(key, "public_key"):
        return key.public_key()
    raise TypeError(f"not a key or signer: {type(key).__name__}")


def modulus_le(key) -> bytes:
    """The 384-byte little-endian modulus, as SIGSTRUCT stores it."""
    return public_key_of(key).public_numbers().n.to_bytes(RSA_KEY_BYTES, "little")


def mrsigner_of_key(key) -> bytes:
    """MRSIGNER of enclaves signed with ``key``: SHA-256 of its little-endian modulus."""
    return hashlib.sha256(modulus_le(key)).digest()


_debug_modulus: int | None = None


def _debug_key_modulus() -> int:
    global _debug_modulus
    if _debug_modulus is None:
        _debug_modulus = load_signing_key(debug_key_path()).public_key().public_numbers().n
    return _debug_modulus


def is_debug_key(key) -> bool:
    """True if ``key`` (private or public key, KeySigner or SignTool) is the shipped
    debug key: its modulus is the one in templates/debug_signing_key.pem."""
    return public_key_of(key).public_numbers().n == _debug_key_modulus()


def verify_signature(public: rsa.RSAPublicKey, message: bytes, signature: bytes) -> bool:
    """Does the big-endian PKCS#1 v1.5 SHA-256 ``signature`` match ``message``?"""
    try:
        public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        return True
    except InvalidSignature:
        return False


class KeySigner:
    """Signs with a private key held in this process (a PEM file, or the debug key)."""

    def __init__(self, key: rsa.RSAPrivateKey, source: str = "signing key"):
        check_sgx_key(key, source)
        self.key = key
        self.source = source

    @classmethod
    def from_file(cls, path) -> "KeySigner":
        return cls(load_signing_key(path), f"signing key {Path(path)}")

    def public_key(self) -> rsa.RSAPublicKey:
        return self.key.public_key()

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message, padding.PKCS1v15(), hashes.SHA256())


class SignTool:
    """An external signer, Occlum's ``--sign-tool`` (for keys kept in an HSM).

    Interface: the tool is run as ``TOOL MESSAGE_FILE SIGNATURE_FILE``; it reads the
    256-byte SIGSTRUCT message from MESSAGE_FILE and writes the RSA-3072 PKCS#1 v1.5
    SHA-256 signature, 384 bytes big-endian (what ``openssl dgst -sha256 -sign key.pem
    -out SIGNATURE_FILE MESSAGE_FILE`` writes), then exits 0. The signature is checked
    against the public key (``--sign-key``) before it is used.
    """

    def __init__(self, tool_path, public_key_path, *, timeout: float = SIGN_TOOL_TIMEOUT):
        tool = Path(tool_path)
        if tool.parent == Path(".") and not tool.exists():
            import shutil
            found = shutil.which(str(tool_path))   # a bare name: look it up in PATH
            if found:
                tool = Path(found)
        if not tool.exists():
            raise SignError(f"sign tool {tool_path}: no such file")
        if tool.is_dir() or not os.access(tool, os.X_OK):
            raise SignError(f"sign tool {tool}: not an executable file")
        self.tool = tool.resolve()
        self.public_key_path = Path(public_key_path)
        self._public = load_public_key(self.public_key_path)
        self.timeout = timeout
        self.source = f"sign tool {self.tool}"

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    def sign(self, message: bytes) -> bytes:
        tool = self.tool
        import subprocess
        import tempfile
        with tempfile.TemporaryDirectory(prefix="occlum-sign-") as tmp:
            msg_file = Path(tmp) / "sigstruct.msg"
            sig_file = Path(tmp) / "sigstruct.sig"
            msg_file.write_bytes(message)
            try:
                proc = subprocess.run([str(tool), str(msg_file), str(sig_file)],
                                      stdin=subprocess.DEVNULL, capture_output=True,
                                      timeout=self.timeout)
            except subprocess.TimeoutExpired:
                raise SignError(f"sign tool {tool}: no answer within {self.timeout:g} s") from None
            except OSError as exc:
                raise SignError(f"sign tool {tool}: cannot run it: {exc.strerror}") from None
            if proc.returncode != 0:
                status = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
                          else f"exited with status {proc.returncode}")
                last = _last_line(proc.stderr) or _last_line(proc.stdout)
                raise SignError(f"sign tool {tool} {status}" + (f": {last}" if last else ""))
            if not sig_file.exists():
                raise SignError(f"sign tool {tool} exited 0 but wrote no signature "
                                "to its second argument")
            signature = sig_file.read_bytes()
        if len(signature) != RSA_KEY_BYTES:
            raise SignError(f"sign tool {tool} wrote a {len(signature)}-byte signature; "
                            f"expected {RSA_KEY_BYTES} bytes (RSA-3072, big-endian)")
        if not verify_signature(self._public, message, signature):
            raise SignError(f"sign tool {tool}: its signature does not verify with the "
                            f"public key {self.public_key_path} (wrong key, or not "
                            "PKCS#1 v1.5 over SHA-256)")
        return signature


def _last_line(output: bytes) -> str:
    lines = [ln.strip() for ln in output.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def as_signer(signer):
    """A private key, a key file path, a KeySigner or a SignTool -> an object with
    ``public_key()`` and ``sign(message)``."""
    if isinstance(signer, rsa.RSAPrivateKey):
        return KeySigner(signer)
    if isinstance(signer, (str, os.PathLike)):
        return KeySigner.from_file(signer)
    if hasattr(signer, "sign") and hasattr(signer, "public_key"):
        check_sgx_key(signer.public_key(), getattr(signer, "source", "signer"))
        return signer
    raise TypeError(f"cannot sign with {type(signer).__name__}")
