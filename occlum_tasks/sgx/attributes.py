"""SECS/SIGSTRUCT ATTRIBUTES.FLAGS bits (SDM volume 3D). A module of its own so that
key derivation (keys.py) and SIGSTRUCT (sigstruct.py) share them without the former
importing the RSA code."""
FLAG_INIT = 0x1
FLAG_DEBUG = 0x2
FLAG_MODE64BIT = 0x4
FLAG_PROVISIONKEY = 0x10
FLAG_EINITTOKENKEY = 0x20
FLAG_KSS = 0x80
