"""The emulated SGX side of occlum-py: enclave layout, MRENCLAVE, SIGSTRUCT, keys.

Modules, one per format (docs/enclave-formats.md describes them):
  fields       tables of (name, offset, struct code) for fixed binary layouts
  layout       EnclaveLayout: the enclave's regions, derived from Occlum.json
  measurement  measure(): MRENCLAVE from ECREATE/EADD/EEXTEND records
  sigstruct    make/parse/verify the 1808-byte SIGSTRUCT, MRSIGNER
  signing      signing keys: PEM keys, the external sign tool, the debug key
"""
