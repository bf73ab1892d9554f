"""Tests of occlum_tasks.sgx: enclave layout, MRENCLAVE, SIGSTRUCT and signing keys.

Expected values are rebuilt here by hand from docs/sgx-facts.md and
docs/enclave-formats.md (literal offsets and struct codes), not from the package's own
tables, so that a wrong table fails a test instead of agreeing with itself.
"""
import hashlib
import shutil
import stat
import struct
import sys
import textwrap

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from occlum_tasks import TEMPLATES_DIR
from occlum_tasks.errors import ConfigError, IntegrityError, SignError
from occlum_tasks.sgx.layout import EnclaveLayout
from occlum_tasks.sgx.measurement import measure
from occlum_tasks.sgx.signing import (SignTool, debug_key_path, is_debug_key,
                                      load_public_key, load_signing_key, mrsigner_of_key)
from occlum_tasks.sgx.sigstruct import (make_sigstruct, mrsigner_of, parse_sigstruct,
                                        verify_sigstruct)

KB, MB = 1 << 10, 1 << 20
MRENCLAVE = bytes(range(32))
DEBUG_META = {"debuggable": True, "product_id": 7, "version_number": 3, "enable_kss": False,
              "family_id": {"high": "0x0", "low": "0x0"},
              "ext_prod_id": {"high": "0x0", "low": "0x0"}}
RELEASE_META = dict(DEBUG_META, debuggable=False)


def resolved(threads=2, heap=8 * KB, stack=8 * KB, user=8 * KB, edmm=False, **limits):
    return {"resource_limits": dict(kernel_space_heap_size=heap, kernel_space_stack_size=stack,
                                    user_space_size=user, max_num_of_threads=threads, **limits),
            "feature": {"enable_edmm": edmm},
            "metadata": dict(DEBUG_META)}


MANIFEST = bytes((i * 7 + 3) % 251 for i in range(5000))    # two pages, the last partial
CONFIG_MAC = bytes.fromhex("00112233445566778899aabbccddeeff")


def mrenclave_of(res, manifest=MANIFEST, mac=CONFIG_MAC):
    return measure(EnclaveLayout.from_config(res, manifest, mac), manifest, mac)


def save_key(path, key, fmt=serialization.PrivateFormat.PKCS8, password=None):
    enc = (serialization.BestAvailableEncryption(password) if password
           else serialization.NoEncryption())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, fmt, enc))
    return path


def save_public(path, key):
    path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


@pytest.fixture(scope="session")
def release_key():
    return rsa.generate_private_key(public_exponent=3, key_size=3072)


@pytest.fixture(scope="session")
def debug_key():
    return load_signing_key(debug_key_path())


# --- measurement ---------------------------------------------------------------------

def _eadd(offset, flags):
    return struct.pack("<8sQQ40x", b"EADD\0\0\0\0", offset, flags)


def _measured(offset, flags, page):
    out = _eadd(offset, flags)
    for i in range(16):
        out += struct.pack("<8sQ48x", b"EEXTEND\0", offset + 256 * i) + page[256 * i:256 * i + 256]
    return out


def _tcs(ossa):
    # state, flags, ossa, cssa, nssa, oentry, aep, ofsbasgx, ogsbasgx, fslimit, gslimit
    return struct.pack("<QQQIIQQQQII", 0, 0, ossa, 0, 2, 0, 0, 0, 0, 0xFFF, 0xFFF).ljust(4096, b"\0")


def test_measurement_known_answer():
    """Two threads, 8 KiB heap/stack/user space: the records written out by hand."""
    R, RW, RWX, TCS = 0x201, 0x203, 0x207, 0x100
    config_page = (b"OCCLUM-PY-CONFIG" + struct.pack("<II", 1, 16) + CONFIG_MAC.ljust(32, b"\0")
                   + struct.pack("<7Q", 5000, 0x20000, 8192, 8192, 8192, 8192, 8192)
                   + struct.pack("<5I", 2, 2, 1, 2, 0)).ljust(4096, b"\0")
    stream = struct.pack("<8sIQ44x", b"ECREATE\0", 1, 0x20000)
    stream += _measured(0x0000, R, MANIFEST[:4096])
    stream += _measured(0x1000, R, MANIFEST[4096:].ljust(4096, b"\0"))
    stream += _measured(0x2000, R, config_page)
    # 0x3000 guard
    stream += _eadd(0x4000, RW) + _eadd(0x5000, RW)                       # kernel heap
    for base in (0x6000, 0xD000):                                          # per thread
        stream += _measured(base + 0x1000, TCS, _tcs(base + 0x2000))       # TCS
        stream += _eadd(base + 0x2000, RW) + _eadd(base + 0x3000, RW)      # 2 SSA frames
        stream += _eadd(base + 0x5000, RW) + _eadd(base + 0x6000, RW)      # stack above a guard
    stream += _eadd(0x15000, RWX) + _eadd(0x16000, RWX)                    # user space
    layout = EnclaveLayout.from_config(resolved(), MANIFEST, CONFIG_MAC)
    assert layout.enclave_size == 0x20000 and layout.total_size == 0x17000
    assert layout.tcs_offsets == [0x7000, 0xE000]
    assert measure(layout, MANIFEST, CONFIG_MAC) == hashlib.sha256(stream).digest()


def test_mrenclave_changes_with_every_input():
    base = mrenclave_of(resolved())
    assert mrenclave_of(resolved()) == base
    variants = [
        mrenclave_of(resolved(threads=3)),
        mrenclave_of(resolved(heap=12 * KB)),
        mrenclave_of(resolved(stack=12 * KB)),
        mrenclave_of(resolved(user=12 * KB)),
        mrenclave_of(resolved(), manifest=MANIFEST[:-1] + b"\xff"),
        mrenclave_of(resolved(), manifest=MANIFEST + b"\0"),     # only a trailing zero
        mrenclave_of(resolved(), mac=CONFIG_MAC[:-1] + b"\0"),
        mrenclave_of(resolved(), mac=CONFIG_MAC * 2),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_measure_checks_its_inputs_against_the_layout():
    layout = EnclaveLayout.from_config(resolved(), MANIFEST, CONFIG_MAC)
    with pytest.raises(IntegrityError, match="runtime manifest"):
        measure(layout, MANIFEST + b"x", CONFIG_MAC)
    with pytest.raises(IntegrityError, match="config MAC"):
        measure(layout, MANIFEST, CONFIG_MAC * 2)


def test_layout_refuses_bad_limits():
    with pytest.raises(ConfigError, match="max_num_of_threads"):
        EnclaveLayout.from_config(resolved(threads=0), MANIFEST, CONFIG_MAC)
    with pytest.raises(ConfigError, match="user_space_size"):
        EnclaveLayout.from_config(resolved(user="300MB"), MANIFEST, CONFIG_MAC)
    with pytest.raises(ConfigError, match="config MAC"):
        EnclaveLayout.from_config(resolved(), MANIFEST, b"short")


def test_edmm_reserves_without_measuring():
    plain = EnclaveLayout.from_config(resolved(threads=4), MANIFEST, CONFIG_MAC)
    # without EDMM the *_max_size knobs are ignored entirely
    ignored = resolved(threads=4, user_space_max_size=64 * KB, init_num_of_threads=1)
    assert EnclaveLayout.from_config(ignored, MANIFEST, CONFIG_MAC) == plain
    edmm = EnclaveLayout.from_config(resolved(threads=4, edmm=True, user_space_max_size=64 * KB,
                                              kernel_space_heap_max_size=32 * KB,
                                              init_num_of_threads=1), MANIFEST, CONFIG_MAC)
    assert edmm.count_pages("reserved") == 14 + 6 + 3 * (1 + 2 + 2)
    assert len([r for r in edmm.regions if r.name == "tcs" and r.kind == "measured"]) == 1
    m_edmm = measure(edmm, MANIFEST, CONFIG_MAC)
    assert m_edmm != measure(plain, MANIFEST, CONFIG_MAC)
    # a larger reserve is only visible through the config page, and still counts
    bigger = EnclaveLayout.from_config(resolved(threads=4, edmm=True, user_space_max_size=68 * KB,
                                                kernel_space_heap_max_size=32 * KB,
                                                init_num_of_threads=1), MANIFEST, CONFIG_MAC)
    assert bigger.enclave_size == edmm.enclave_size
    assert measure(bigger, MANIFEST, CONFIG_MAC) != m_edmm
    with pytest.raises(ConfigError, match="init_num_of_threads"):
        EnclaveLayout.from_config(resolved(threads=2, edmm=True, init_num_of_threads=3),
                                  MANIFEST, CONFIG_MAC)


def test_layout_json_round_trip_and_tampering():
    layout = EnclaveLayout.from_config(resolved(threads=3), MANIFEST, CONFIG_MAC)
    text = layout.to_json()
    assert text == EnclaveLayout.from_config(resolved(threads=3), MANIFEST, CONFIG_MAC).to_json()
    again = EnclaveLayout.from_json(text)
    assert again == layout and again.to_json() == text
    assert measure(again, MANIFEST, CONFIG_MAC) == measure(layout, MANIFEST, CONFIG_MAC)
    with pytest.raises(IntegrityError, match="do not follow"):
        EnclaveLayout.from_json(text.replace('"secinfo": 519', '"secinfo": 515'))
    with pytest.raises(IntegrityError, match="unreadable"):
        EnclaveLayout.from_json("{not json")


def test_default_config_layout_measures():
    """~93,000 pages (the time it takes is bench material, not a test's)."""
    res = resolved(threads=32, heap=32 * MB, stack=1 * MB, user=300 * MB)
    manifest = b"m" * 30000
    layout = EnclaveLayout.from_config(res, manifest, CONFIG_MAC)
    assert layout.enclave_size == 512 * MB
    assert layout.count_pages("added") > 90000
    first = measure(layout, manifest, CONFIG_MAC)
    assert len(first) == 32 and measure(layout, manifest, CONFIG_MAC) == first
    assert measure(layout, manifest[:-1] + b"n", CONFIG_MAC) != first


# --- SIGSTRUCT ---------------------------------------------------------------------

def test_sigstruct_fields_at_their_offsets(debug_key):
    blob = make_sigstruct(MRENCLAVE, DEBUG_META, debug_key)
    assert len(blob) == 1808
    assert blob[0:16] == bytes.fromhex("06000000E10000000000010000000000")
    assert blob[16:20] == bytes(4)                                         # VENDOR
    assert blob[20:24] == (0x20260101).to_bytes(4, "little")               # DATE
    assert blob[24:40] == bytes.fromhex("01010000600000006000000001000000")
    assert blob[44:128] == bytes(84)
    n = debug_key.public_key().public_numbers().n
    assert blob[128:512] == n.to_bytes(384, "little")
    assert blob[512:516] == b"\x03\0\0\0"
    assert struct.unpack_from("<QQ", blob, 928) == (0x4 | 0x2, 0x3)       # MODE64BIT|DEBUG, x87|SSE
    assert blob[960:992] == MRENCLAVE
    assert struct.unpack_from("<HH", blob, 1024) == (7, 3)
    assert blob[912:928] == bytes(16) and blob[1008:1024] == bytes(16)     # no KSS
    assert blob[1028:1040] == bytes(12)


def test_signature_q1_q2_and_mrsigner(release_key):
    blob = make_sigstruct(MRENCLAVE, RELEASE_META, release_key)
    n = int.from_bytes(blob[128:512], "little")
    s = int.from_bytes(blob[516:900], "little")
    message = blob[0:128] + blob[900:1028]
    assert len(message) == 256
    release_key.public_key().verify(s.to_bytes(384, "big"), message,
                                    padding.PKCS1v15(), hashes.SHA256())
    assert int.from_bytes(blob[1040:1424], "little") == s * s // n
    assert int.from_bytes(blob[1424:1808], "little") == (s * s % n) * s // n
    expected = hashlib.sha256(n.to_bytes(384, "little")).digest()
    assert mrsigner_of(blob) == expected == mrsigner_of_key(release_key)
    assert struct.unpack_from("<Q", blob, 928)[0] & 0x2 == 0               # not DEBUG
    info = verify_sigstruct(blob, mrenclave=MRENCLAVE, mrsigner=expected)
    assert info.mrenclave == MRENCLAVE and info.debug is False


def test_parse_round_trip(debug_key):
    meta = dict(DEBUG_META, enable_kss=True, product_id=0x1234, version_number=0xFFFF,
                family_id={"high": "0x1122334455667788", "low": "0x99aabbccddeeff00"},
                ext_prod_id={"high": "0x0", "low": "0x5"})
    blob = make_sigstruct(MRENCLAVE, {"metadata": meta}, debug_key, date="2024-02-29")
    info = parse_sigstruct(blob)
    assert info["mrenclave"] == MRENCLAVE and info["mrsigner"] == mrsigner_of(blob)
    assert info["attributes"] == 0x4 | 0x2 | 0x80 and info["xfrm"] == 0x3 and info["kss"]
    assert (info["isvprodid"], info["isvsvn"]) == (0x1234, 0xFFFF)
    assert info["date"] == 0x20240229 and info["date_iso"] == "2024-02-29"
    # ISVFAMILYID: the low u64 then the high u64, both little-endian
    assert blob[912:928] == bytes.fromhex("00ffeeddccbbaa99" "8877665544332211")
    assert info["isvfamilyid"] == blob[912:928]
    assert blob[1008:1024] == (5).to_bytes(16, "little")
    assert info["modulus"] == blob[128:512] and info["exponent"] == 3
    assert verify_sigstruct(blob) == info


@pytest.mark.parametrize("offset", [0, 20, 40, 100, 900, 912, 928, 944, 960, 991, 1008, 1024, 1027])
def test_tampering_with_a_signed_byte_is_detected(debug_key, offset):
    blob = bytearray(make_sigstruct(MRENCLAVE, DEBUG_META, debug_key))
    blob[offset] ^= 0x01
    with pytest.raises(SignError) as err:
        verify_sigstruct(bytes(blob))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("offset,what", [(130, "signature"), (600, "signature"),
                                         (1100, "Q1"), (1500, "Q2"), (512, "EXPONENT"),
                                         (1030, "reserved")])
def test_tampering_with_unsigned_fields_is_detected(debug_key, offset, what):
    blob = bytearray(make_sigstruct(MRENCLAVE, DEBUG_META, debug_key))
    blob[offset] ^= 0x01
    with pytest.raises(SignError, match=what):
        verify_sigstruct(bytes(blob))


def test_verify_checks_expected_identity_and_size(debug_key, release_key):
    blob = make_sigstruct(MRENCLAVE, DEBUG_META, debug_key)
    with pytest.raises(SignError, match="MRENCLAVE"):
        verify_sigstruct(blob, mrenclave=bytes(32))
    with pytest.raises(SignError, match="MRSIGNER"):
        verify_sigstruct(blob, mrsigner=mrsigner_of_key(release_key))
    with pytest.raises(SignError, match="1808"):
        verify_sigstruct(blob[:-1])


def test_sigstruct_is_deterministic(debug_key, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    res = resolved(threads=3)
    m1, m2 = mrenclave_of(res), mrenclave_of(resolved(threads=3))
    assert m1 == m2
    assert make_sigstruct(m1, res, debug_key) == make_sigstruct(m2, res, debug_key)


def test_date_sources(debug_key, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")                 # 2023-11-14 UTC
    blob = make_sigstruct(MRENCLAVE, DEBUG_META, debug_key)
    assert struct.unpack_from("<I", blob, 20)[0] == 0x20231114
    blob = make_sigstruct(MRENCLAVE, DEBUG_META, debug_key, date="20250102")
    assert struct.unpack_from("<I", blob, 20)[0] == 0x20250102            # explicit wins
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(SignError, match="SOURCE_DATE_EPOCH"):
        make_sigstruct(MRENCLAVE, DEBUG_META, debug_key)


# --- keys ----------------------------------------------------------------------------

def test_shipped_debug_key():
    path = debug_key_path()
    assert path == TEMPLATES_DIR / "debug_signing_key.pem" and path.is_file()
    key = load_signing_key(path)
    assert key.key_size == 3072 and key.public_key().public_numbers().e == 3
    assert is_debug_key(key) and is_debug_key(key.public_key())


def test_release_build_refuses_the_debug_key(debug_key, release_key):
    assert not is_debug_key(release_key)
    with pytest.raises(SignError, match="debug key") as err:
        make_sigstruct(MRENCLAVE, RELEASE_META, debug_key)
    assert "\n" not in str(err.value)
    verify_sigstruct(make_sigstruct(MRENCLAVE, RELEASE_META, release_key))


def test_key_loading_errors_name_the_file(tmp_path, release_key):
    missing = tmp_path / "nokey.pem"
    with pytest.raises(SignError, match="nokey.pem: no such file"):
        load_signing_key(missing)
    small = save_key(tmp_path / "small.pem", rsa.generate_private_key(public_exponent=3, key_size=2048))
    with pytest.raises(SignError, match=r"small\.pem: RSA-2048"):
        load_signing_key(small)
    e65537 = save_key(tmp_path / "e65537.pem", rsa.generate_private_key(public_exponent=65537, key_size=3072))
    with pytest.raises(SignError, match=r"e65537\.pem: public exponent 65537"):
        load_signing_key(e65537)
    eckey = save_key(tmp_path / "ec.pem", ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(SignError, match=r"ec\.pem: not an RSA key"):
        load_signing_key(eckey)
    locked = save_key(tmp_path / "locked.pem", release_key, password=b"pw")
    with pytest.raises(SignError, match=r"locked\.pem: the key is encrypted"):
        load_signing_key(locked)
    public = save_public(tmp_path / "pub.pem", release_key)
    with pytest.raises(SignError, match=r"pub\.pem: it holds a public key"):
        load_signing_key(public)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello\n")
    with pytest.raises(SignError, match=r"garbage\.pem: not a PEM private key"):
        load_signing_key(garbage)
    # PKCS#8 and traditional PEM both load
    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        good = save_key(tmp_path / "good.pem", release_key, fmt)
        assert load_signing_key(good).private_numbers() == release_key.private_numbers()
    with pytest.raises(SignError, match=r"small\.pem"):
        load_public_key(small)


# --- external sign tool ----------------------------------------------------------------

def _script(path, body):
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _python_signer(tmp_path, key_pem, name="signer.py"):
    return _script(tmp_path / name, f"""
        import sys
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding
        key = serialization.load_pem_private_key(open({str(key_pem)!r}, "rb").read(), None)
        msg = open(sys.argv[1], "rb").read()
        assert len(msg) == 256, len(msg)
        open(sys.argv[2], "wb").write(key.sign(msg, padding.PKCS1v15(), hashes.SHA256()))
        """)


def test_sign_tool_python(tmp_path, release_key):
    key_pem = save_key(tmp_path / "hsm.pem", release_key)
    tool = SignTool(_python_signer(tmp_path, key_pem), save_public(tmp_path / "pub.pem", release_key))
    blob = make_sigstruct(MRENCLAVE, RELEASE_META, tool)
    assert blob == make_sigstruct(MRENCLAVE, RELEASE_META, release_key)   # PKCS#1 v1.5 is deterministic
    assert mrsigner_of(blob) == mrsigner_of_key(release_key)
    verify_sigstruct(blob)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_sign_tool_openssl(tmp_path, release_key):
    key_pem = save_key(tmp_path / "hsm.pem", release_key, serialization.PrivateFormat.TraditionalOpenSSL)
    tool_path = tmp_path / "openssl-sign.sh"
    tool_path.write_text(f'#!/bin/sh\nexec openssl dgst -sha256 -sign "{key_pem}" -out "$2" "$1"\n')
    tool_path.chmod(0o755)
    tool = SignTool(tool_path, save_public(tmp_path / "pub.pem", release_key))
    blob = make_sigstruct(MRENCLAVE, RELEASE_META, tool)
    assert verify_sigstruct(blob).mrsigner == mrsigner_of_key(release_key)


def test_sign_tool_failures_are_one_clear_line(tmp_path, release_key, debug_key):
    public = save_public(tmp_path / "pub.pem", release_key)
    failing = _script(tmp_path / "fail.py", """
        import sys
        print("connecting to HSM", file=sys.stderr)
        print("HSM slot 3 is offline", file=sys.stderr)
        sys.exit(4)
        """)
    short = _script(tmp_path / "short.py", "import sys\nopen(sys.argv[2], 'wb').write(b'x' * 10)\n")
    silent = _script(tmp_path / "silent.py", "pass\n")
    wrong = _python_signer(tmp_path, save_key(tmp_path / "debug.pem", debug_key), "wrong.py")
    cases = [(failing, r"exited with status 4: HSM slot 3 is offline"),
             (short, r"10-byte signature"),
             (silent, r"wrote no signature"),
             (wrong, r"does not verify with the public key .*pub\.pem")]
    for tool_path, pattern in cases:
        with pytest.raises(SignError, match=pattern) as err:
            make_sigstruct(MRENCLAVE, RELEASE_META, SignTool(tool_path, public))
        assert "\n" not in str(err.value)
    with pytest.raises(SignError, match="no such file"):
        SignTool(tmp_path / "absent", public)
    not_exec = tmp_path / "plain.txt"
    not_exec.write_text("x")
    with pytest.raises(SignError, match="not an executable"):
        SignTool(not_exec, public)


def test_sign_tool_with_debug_public_key_is_a_debug_key(tmp_path, debug_key):
    tool = SignTool(_python_signer(tmp_path, debug_key_path()),
                    save_public(tmp_path / "pub.pem", debug_key))
    assert is_debug_key(tool)
    with pytest.raises(SignError, match="debug key"):
        make_sigstruct(MRENCLAVE, RELEASE_META, tool)
    verify_sigstruct(make_sigstruct(MRENCLAVE, DEBUG_META, tool))


def test_release_key_signature_fails_under_another_modulus(release_key, debug_key):
    """Swapping in another key's modulus (keeping the signature) must not verify."""
    blob = bytearray(make_sigstruct(MRENCLAVE, RELEASE_META, release_key))
    blob[128:512] = debug_key.public_key().public_numbers().n.to_bytes(384, "little")
    # half the time the signature is above the other modulus, which is refused first
    with pytest.raises(SignError, match="signature does not match|SIGNATURE is not smaller"):
        verify_sigstruct(bytes(blob))


def _by_hand(layout, manifest, mac):
    """The records written out from the expanded regions, one page at a time."""
    stream = struct.pack("<8sIQ44x", b"ECREATE\0", 1, layout.enclave_size)
    for r in layout.regions:
        if r.kind == "measured":
            for offset, page in layout.measured_pages(r, manifest, mac):
                stream += _measured(offset, r.flags, page)
        elif r.kind == "added":
            stream += b"".join(_eadd(r.offset + i * 4096, r.flags) for i in range(r.pages))
    return stream


def test_fast_measurement_equals_the_records_by_hand_across_4gib():
    """Thread slots that straddle the 4 GiB line (the fast path splits offsets into
    32-bit halves), EDMM-reserved threads, a kernel heap reserve pushing them there."""
    res = resolved(threads=5, stack=12 * KB, edmm=True, init_num_of_threads=3,
                   kernel_space_heap_max_size=4 * 1024 * MB - 40 * KB, user_space_max_size=16 * KB)
    layout = EnclaveLayout.from_config(res, MANIFEST, CONFIG_MAC)
    starts = [layout.region("tcs", t).offset for t in range(5)]
    assert starts[0] < 1 << 32 < starts[-1]
    assert measure(layout, MANIFEST, CONFIG_MAC) == hashlib.sha256(
        _by_hand(layout, MANIFEST, CONFIG_MAC)).digest()


def test_layout_file_does_not_grow_with_threads():
    few = EnclaveLayout.from_config(resolved(threads=2), MANIFEST, CONFIG_MAC).to_json()
    many = EnclaveLayout.from_config(resolved(threads=60000), MANIFEST, CONFIG_MAC).to_json()
    assert len(many) < len(few) + 64
    assert EnclaveLayout.from_json(many).max_num_of_threads == 60000
