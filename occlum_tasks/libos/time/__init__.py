"""Time: the host's clocks (the only time source an enclave has is the untrusted host)."""
