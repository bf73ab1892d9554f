"""The CPUID answers of the emulated CPU (cpu.py installs them in a CPUID hook)."""


def cpuid_table():
    """The CPU the guest sees: SSE up to 4.2, AES, PCLMUL, POPCNT, BMI1/2, RDRAND, no
    AVX/AVX2/FMA/XSAVE, so that libc IFUNCs pick paths Unicorn implements."""
    brand = b"occlum-py emulated x86-64 (unicorn)".ljust(48, b"\0")
    words = [int.from_bytes(brand[i:i + 4], "little") for i in range(0, 48, 4)]
    sse = (1 << 0) | (1 << 1) | (1 << 9) | (1 << 13) | (1 << 19) | (1 << 20) | (1 << 22) | (1 << 23) \
        | (1 << 25) | (1 << 30) | (1 << 31)   # SSE3 PCLMUL SSSE3 CX16 SSE4.1/2 MOVBE POPCNT AES RDRAND HV
    return {
        (0, 0): (7, 0x756E6547, 0x6C65746E, 0x49656E69),           # max leaf 7, GenuineIntel
        (1, 0): (0x000206C2, 0x00010800, sse, 0x078BFBFD),          # family 6 model 0x2c
        (2, 0): (0x00000001, 0, 0, 0x002C307D),                     # cache descriptors
        (4, 0): (0x121, 0x01C0003F, 63, 0),                          # L1d 32K 8-way
        (4, 1): (0x122, 0x01C0003F, 63, 0),                          # L1i 32K
        (4, 2): (0x143, 0x01C0003F, 511, 0),                         # L2 256K
        (4, 3): (0x163, 0x03C0003F, 8191, 0),                        # L3 8M 16-way
        (7, 0): (0, (1 << 3) | (1 << 8) | (1 << 9), 0, 0),           # BMI1 BMI2 ERMS
        (0x80000000, 0): (0x80000008, 0, 0, 0),
        (0x80000001, 0): (0, 0, (1 << 0) | (1 << 5), (1 << 11) | (1 << 20) | (1 << 29)),  # LAHF LZCNT; SYSCALL NX LM
        (0x80000002, 0): tuple(words[0:4]), (0x80000003, 0): tuple(words[4:8]),
        (0x80000004, 0): tuple(words[8:12]),
        (0x80000006, 0): (0, 0, 0x01006040, 0),
        (0x80000008, 0): (0x00003028, 0, 0, 0),
    }
