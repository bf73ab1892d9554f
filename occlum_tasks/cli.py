"""The `occlum` command. Thin: it turns a command line into doit tasks (build) or
calls the package (init, print, ...). Errors are one line and a non-zero exit;
a traceback only with OCCLUM_LOG_LEVEL=debug."""
import argparse
import os
import sys
import traceback
from pathlib import Path

from . import __version__
from .errors import OcclumError
from .paths import OCCLUM_JSON, SIGSTRUCT, STATUS_FILE

NOT_YET = {
    "start": "start the enclave once and serve `occlum exec` requests",
    "exec": "run a program in the enclave started by `occlum start`",
    "stop": "stop the enclave started by `occlum start`",
    "package": "pack the built instance into a tarball for deployment",
    "mount": "mount the union of the image and the writable layer on the host",
    "gdb": "run a program in the enclave under gdb",
}


def require_instance():
    if not OCCLUM_JSON.is_file() or not STATUS_FILE.is_file():
        raise OcclumError(f"{Path.cwd()}: not an Occlum instance; run `occlum init` here "
                          "or `occlum new DIR`")


# -- init / new / status -----------------------------------------------------------

def cmd_init(args):
    from .instance import init_instance
    init_instance(Path.cwd())
    print(f"Initialized an Occlum instance in {Path.cwd()}")


def cmd_new(args):
    from .instance import init_instance
    target = Path(args.dir)
    if target.exists() or target.is_symlink():
        raise OcclumError(f"{args.dir}: already exists; `occlum new` creates a new folder "
                          "(use `occlum init` inside an existing one)")
    target.mkdir(parents=True)
    init_instance(target)
    print(f"Initialized an Occlum instance in {target.resolve()}")


def cmd_status(args):
    require_instance()
    from .instance_lock import running
    pid = running(Path("."))        # an enclave holds run/.lock (the kernel's answer)
    if pid is not None:
        print(f"running (pid {pid})" if pid else "running")
        return
    from .build_state import status_text
    print(status_text(Path(".")))        # built, or what a failed or cut-short build left


# -- build -------------------------------------------------------------------------

def doit_main():
    """The instance's own dodo.py when it has one (so `occlum build` == `doit build`),
    else the package's graph."""
    from doit.cmd_base import DodoTaskLoader, ModuleTaskLoader
    from doit.doit_cmd import DoitMain
    if Path("dodo.py").is_file():
        loader = DodoTaskLoader()
    else:
        from . import steps
        loader = ModuleTaskLoader(steps)
    return DoitMain(loader, config_filenames=("doit.cfg",))


def build_vars(args):
    """`occlum build` flags as doit variables (see steps.common.BuildOptions)."""
    pairs = []
    if args.sign_key:
        pairs.append(f"sign_key={Path(args.sign_key).resolve()}")
    if args.sign_tool:
        pairs.append(f"sign_tool={Path(args.sign_tool).resolve()}")
    if args.image_key:
        pairs.append(f"image_key={Path(args.image_key).resolve()}")
    if args.buildin_image_key:
        pairs.append("buildin_image_key=1")
    if args.sgx_mode:
        pairs.append(f"sgx_mode={args.sgx_mode}")
    return pairs


def cmd_build(args):
    require_instance()
    from .steps.common import sgx_mode_problem
    # refused before doit loads the graph, with the same words as the graph's own check
    problem = sgx_mode_problem((args.sgx_mode or os.environ.get("SGX_MODE") or "SIM").upper())
    if problem:
        raise OcclumError(problem)
    doit_args = (["run"] + (["--always-execute"] if args.force else []) + ["build"]
                 + build_vars(args) + (["force=1"] if args.force else []))
    status = doit_main().run(doit_args)
    return 0 if status == 0 else 1


# -- run ---------------------------------------------------------------------------

def cmd_run(args):
    """As Occlum's: run what is built (no rebuild, so doit and jsonschema stay off the
    launch path); `doit run /bin/app` is the variant that builds first."""
    require_instance()
    if not SIGSTRUCT.is_file():
        raise OcclumError(f"{SIGSTRUCT}: not built yet; run `occlum build` first")
    from .launch import run_in_enclave, split_at_program
    # argparse drops a `--` among the program's arguments: take them as typed
    _, program_args = split_at_program(args.path, args.raw_argv[args.raw_argv.index("run") + 1:])
    return run_in_enclave(args.path, program_args, image_key_file=args.image_key)


# -- keys and measurements ----------------------------------------------------------

def cmd_gen_image_key(args):
    from .image.keys import generate_image_key
    path = Path(args.file)
    if path.exists():
        raise OcclumError(f"{args.file}: already exists; a key is never overwritten "
                          "(an image encrypted with it could not be read again)")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as err:
        raise OcclumError(f"{args.file}: cannot create it ({err.strerror})") from None
    with os.fdopen(fd, "w") as f:
        f.write(generate_image_key() + "\n")


def cmd_print(args):
    require_instance()
    from .sgx.sigstruct import mrsigner_of, parse_sigstruct
    if not SIGSTRUCT.is_file():
        raise OcclumError(f"{SIGSTRUCT}: not built yet; run `occlum build` first")
    blob = SIGSTRUCT.read_bytes()
    if args.what == "mrenclave":
        print(parse_sigstruct(blob)["mrenclave"].hex())
    else:
        print(mrsigner_of(blob).hex())


def cmd_not_yet(args):
    raise OcclumError("not available in this version of occlum-py yet")


# -- the parser --------------------------------------------------------------------

def make_parser():
    parser = argparse.ArgumentParser(
        prog="occlum",
        description="Occlum's workflow without SGX: build a measured, signed, integrity-"
                    "protected Occlum instance and run it in an emulated enclave.",
        epilog="Typical use: occlum new my_inst && cd my_inst && cp ../app image/bin/ && "
               "occlum build && occlum run /bin/app. Set OCCLUM_LOG_LEVEL=off|error|warn|"
               "info|debug|trace for logs; debug also shows Python tracebacks.")
    parser.add_argument("--version", action="version", version=f"occlum-py {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("init", help="make the current folder an Occlum instance",
                       description="Create Occlum.json, image/ (with the musl loader), "
                                   "dodo.py and doit.cfg in the current folder.")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("new", help="create a folder and initialise an instance in it",
                       description="Create DIR (which must not exist) and run `occlum init` in it.")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--init-ra", choices=["grpc_ratls", "aecs"],
                   help="remote-attestation init (not available in occlum-py)")
    p.set_defaults(func=cmd_new)

    p = sub.add_parser("build", help="build the signed, integrity-protected enclave",
                       description="Run the build graph (config, initfs, image, sysconf, "
                                   "runtime, sign); only steps whose inputs changed run. "
                                   "The same graph runs as `doit build` in the instance.")
    p.add_argument("--sign-key", metavar="PEM",
                   help="RSA-3072 private key (exponent 3) to sign with; with --sign-tool, "
                        "the signer's public key. Default: the shipped debug key")
    p.add_argument("--sign-tool", metavar="TOOL",
                   help="external signer for keys kept in an HSM: run as TOOL MESSAGE_FILE "
                        "SIGNATURE_FILE, it signs the 256-byte SIGSTRUCT message with "
                        "RSA PKCS#1 v1.5 SHA-256 and writes the 384-byte signature "
                        "(see docs/enclave-formats.md)")
    p.add_argument("--image-key", metavar="FILE",
                   help="encrypt the image with this key (made by `occlum gen-image-key`)")
    p.add_argument("--buildin-image-key", action="store_true",
                   help="put the image key into the enclave's initfs. The initfs is "
                        "integrity-protected, not encrypted: anyone who can read build/ "
                        "(its files are owner-only; root, a backup or a copy of the instance "
                        "can) reads the key, and with it the image, as Occlum warns too. "
                        "Without it, give the key at run time: occlum run --image-key FILE")
    p.add_argument("--sgx-mode", type=str.upper, metavar="SIM|HW",
                   help="SIM (default; also from SGX_MODE); HW needs real SGX and is refused")
    p.add_argument("-f", "--force", action="store_true",
                   help="rebuild every step and re-encode every image file (repairs a "
                        "damaged build/)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("run", help="run a program in the enclave",
                       description="Verify the built enclave (measurement, signature, "
                                   "runtime, config, image) and run PATH (absolute, under an "
                                   "entry point) with ARGS. Exit status: the program's; "
                                   "128+N when killed by signal N; 127 when it cannot start.")
    p.add_argument("--image-key", metavar="FILE",
                   help="key of an encrypted image whose key is not built in")
    p.add_argument("path", metavar="PATH")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="print the instance's status",
                       description="Print initialized, built, running or debugging.")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("gen-image-key", help="write a new random image key to FILE",
                       description="Write 16 random bytes as hex pairs joined by '-' "
                                   "(mode 0600; an existing FILE is never overwritten).")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_gen_image_key)

    p = sub.add_parser("print", help="print the enclave's MRENCLAVE or MRSIGNER",
                       description="Print 64 hex digits read from the built SIGSTRUCT.")
    p.add_argument("what", choices=["mrenclave", "mrsigner"])
    p.set_defaults(func=cmd_print)

    for name, purpose in NOT_YET.items():
        p = sub.add_parser(name, help=f"{purpose} (not available yet)",
                           description=f"{purpose}. Not available in this version yet.")
        p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        p.set_defaults(func=cmd_not_yet)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = make_parser().parse_args(argv)
    args.raw_argv = argv
    if getattr(args, "init_ra", None):
        args = argparse.Namespace(command="new --init-ra", func=cmd_not_yet)
    try:
        status = args.func(args)
    except OcclumError as err:
        print(f"occlum {args.command}: {err}" if "\n" not in str(err) else str(err),
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # noqa: BLE001 - one line unless debugging
        if os.environ.get("OCCLUM_LOG_LEVEL", "").lower() in ("debug", "trace"):
            traceback.print_exc()
        print(f"occlum {args.command}: internal error: {type(err).__name__}: {err}",
              file=sys.stderr)
        return 1
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
