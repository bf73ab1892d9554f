"""Step `sign`: measure the enclave (runtime manifest, config MAC, limits) and sign
its SIGSTRUCT. Also keeps the writable layer run/ readable: it stays while the
signer is unchanged and is moved aside when the signer changes (DESIGN.md 3)."""
import json
import time

from doit.tools import config_changed

from ..errors import SignError
from ..fsutil import write_atomic
from .common import BuildOptions, existing, info, step_action
from ..paths import LAYOUT, RESOLVED_JSON, RUN_DIR, RUN_ROOT, RUN_SIGNER, RUNTIME_MANIFEST, SIGSTRUCT, SYS_MAC


def signer_for(opts):
    """A private key, or the external tool with the signer's public key."""
    from ..sgx.signing import SignTool, debug_key_path, load_signing_key
    if opts.sign_tool:
        return SignTool(opts.sign_tool, opts.sign_key)
    return load_signing_key(opts.sign_key or debug_key_path())


@step_action
def sign_enclave():
    from ..image.keys import parse_mac
    from ..sgx.layout import EnclaveLayout
    from ..sgx.measurement import measure
    from ..sgx.sigstruct import make_sigstruct, mrsigner_of
    from ..sgx.signing import is_debug_key
    opts = BuildOptions()
    resolved = json.loads(RESOLVED_JSON.read_text())
    manifest = RUNTIME_MANIFEST.read_bytes()
    config_mac = parse_mac(SYS_MAC.read_text())
    signer = signer_for(opts)
    if not resolved["metadata"]["debuggable"] and is_debug_key(signer):
        raise SignError("Occlum.json: metadata.debuggable is false, but the enclave would be "
                        "signed with the shipped debug key; give your own key with --sign-key")
    layout = EnclaveLayout.from_config(resolved, manifest, config_mac)
    mrenclave = measure(layout, manifest, config_mac)
    sigstruct = make_sigstruct(mrenclave, resolved, signer)
    write_atomic(LAYOUT, layout.to_json())
    write_atomic(SIGSTRUCT, sigstruct)
    keep_writable_layer(mrsigner_of(sigstruct).hex())
    info(f"sign: MRENCLAVE {mrenclave.hex()}")


def keep_writable_layer(mrsigner):
    """Occlum wipes run/ at every build; we keep it while it stays readable, that is
    while the signer (whose MRSIGNER its key derives from) is unchanged."""
    if RUN_ROOT.exists():
        old = RUN_SIGNER.read_text().strip() if RUN_SIGNER.is_file() else ""
        if old != mrsigner:
            aside = RUN_DIR.with_name(f"run.old-{time.strftime('%Y%m%d-%H%M%S')}")
            RUN_DIR.rename(aside)
            info(f"sign: the signer changed, so the writable layer run/ can no longer be read; "
                 f"moved it to {aside}/ (building with the old key again makes it readable)")
    RUN_ROOT.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(RUN_SIGNER, mrsigner + "\n")


def task_sign():
    opts = BuildOptions()
    return {
        "doc": "measure the enclave (MRENCLAVE) and sign build/lib/enclave.sigstruct",
        "actions": [sign_enclave],
        "file_dep": [str(RUNTIME_MANIFEST), str(SYS_MAC), str(RESOLVED_JSON)]
                    + existing(opts.sign_key, opts.sign_tool),
        "targets": [str(SIGSTRUCT), str(LAYOUT)],
        "uptodate": [config_changed({"sign_key": str(opts.sign_key or ""),
                                     "sign_tool": str(opts.sign_tool or "")})],
        "clean": True,
    }
