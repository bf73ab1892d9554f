"""Step `sign`: measure the enclave (runtime manifest, config MAC, limits) and sign
its SIGSTRUCT. Also keeps the writable layer run/ readable: it stays while the
signer is unchanged and is moved aside when the signer changes (DESIGN.md 3)."""
import json
import os
import time

from doit.tools import config_changed

from ..fsutil import write_atomic
from .common import BuildOptions, existing, info, step_action
from ..paths import LAYOUT, RESOLVED_JSON, RUN_DIR, RUN_ROOT, RUN_OWNER, RUNTIME_MANIFEST, SIGSTRUCT, SYS_MAC


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
    from ..sgx.sigstruct import make_sigstruct
    opts = BuildOptions()
    resolved = json.loads(RESOLVED_JSON.read_text())
    manifest = RUNTIME_MANIFEST.read_bytes()
    config_mac = parse_mac(SYS_MAC.read_text())
    signer = signer_for(opts)
    # make_sigstruct refuses a production enclave signed with the shipped debug key
    layout = EnclaveLayout.from_config(resolved, manifest, config_mac)
    mrenclave = measure(layout, manifest, config_mac)
    sigstruct = make_sigstruct(mrenclave, resolved, signer)
    write_atomic(LAYOUT, layout.to_json())
    write_atomic(SIGSTRUCT, sigstruct)
    keep_writable_layer(sigstruct)
    info(f"sign: MRENCLAVE {mrenclave.hex()}")


def keep_writable_layer(sigstruct):
    """Occlum wipes run/ at every build; we keep it while it stays readable, that is
    while what its key derives from (signer, product, version, debug) is unchanged."""
    from ..sgx.keys import writable_layer_owner
    from ..sgx.sigstruct import parse_sigstruct
    fields = parse_sigstruct(sigstruct)
    owner = writable_layer_owner(fields["mrsigner"], fields["isvprodid"], fields["isvsvn"],
                                 fields["debug"], fields["kss"])
    recorded = RUN_OWNER.read_text() if RUN_OWNER.is_file() else None
    # no record: a layer that `occlum run` created before any build recorded it
    if RUN_ROOT.exists() and recorded is not None and recorded != owner:
        aside = RUN_DIR.with_name(f"run.old-{time.strftime('%Y%m%d-%H%M%S')}")
        RUN_DIR.rename(aside)
        what = ("the signer" if recorded.split()[:2] != owner.split()[:2]
                else "product_id, version_number or debuggable")
        info(f"sign: {what} changed, so the writable layer run/ can no longer be "
             f"read; moved it to {aside}/ (building as before makes it readable again)")
    RUN_ROOT.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(RUN_OWNER, owner)


def task_sign():
    opts = BuildOptions()
    return {
        "doc": "measure the enclave (MRENCLAVE) and sign build/lib/enclave.sigstruct",
        "actions": [sign_enclave],
        "file_dep": [str(RUNTIME_MANIFEST), str(SYS_MAC), str(RESOLVED_JSON)]
                    + existing(opts.sign_key, opts.sign_tool),
        "targets": [str(SIGSTRUCT), str(LAYOUT)],
        "uptodate": [config_changed({"sign_key": str(opts.sign_key or ""),
                                     "sign_tool": str(opts.sign_tool or ""),
                                     # it sets the SIGSTRUCT's DATE
                                     "date": os.environ.get("SOURCE_DATE_EPOCH", "")})],
        "clean": True,
    }
