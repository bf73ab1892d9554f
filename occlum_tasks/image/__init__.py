"""SEFS, the file system format of Occlum's image, initfs and writable layer.

format.py (the on-disk records), seal.py (hashing or AES-GCM of one block), keys.py
(key text forms and derivations), encode.py and writer.py (build_image), reader.py
(open_image). The specification is docs/formats.md, section "SEFS".
"""
