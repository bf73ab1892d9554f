/* Benchmark (d): file I/O on the writable layer. Writes MB MiB in 4 KiB blocks to a
 * new file, closes it, reads it back in 4 KiB blocks; times each phase itself
 * (CLOCK_MONOTONIC), so that the enclave's start-up is not counted. The block content is
 * made once; each block carries its index in its first and last 8 bytes, which the read
 * phase checks: the phases measure I/O, not the emulated CPU filling and comparing
 * buffers (a full memcmp per block costs more than the read itself under emulation).
 * Usage: fileio [path] [MiB]. Output: "fileio write <s> read <s> bytes <n>".
 * Exit status 2 with "open failed: <reason>" when the file cannot be created. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void stamp(unsigned char *block, long index) {
    memcpy(block, &index, 8);
    memcpy(block + BLOCK - 8, &index, 8);
}

static int stamped(const unsigned char *block, long index) {
    return memcmp(block, &index, 8) == 0 && memcmp(block + BLOCK - 8, &index, 8) == 0;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/root/fileio.dat";
    long blocks = (argc > 2 ? atol(argv[2]) : 16) * (1 << 20) / BLOCK;
    static unsigned char block[BLOCK];
    for (int i = 0; i < BLOCK; i++)
        block[i] = (unsigned char)(i * 7 + 1);

    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) {
        printf("open failed: %s: %s\n", path, strerror(errno));
        return 2;
    }
    double t0 = now();
    for (long b = 0; b < blocks; b++) {
        stamp(block, b);
        if (write(fd, block, BLOCK) != BLOCK) {
            printf("write failed at block %ld: %s\n", b, strerror(errno));
            return 3;
        }
    }
    if (close(fd) != 0) {
        printf("close failed: %s\n", strerror(errno));
        return 3;
    }
    double t1 = now();
    fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("reopen failed: %s: %s\n", path, strerror(errno));
        return 3;
    }
    for (long b = 0; b < blocks; b++) {
        if (read(fd, block, BLOCK) != BLOCK || !stamped(block, b) || block[100] != (unsigned char)701) {
            printf("read back wrong at block %ld\n", b);
            return 4;
        }
    }
    close(fd);
    double t2 = now();
    unlink(path);
    printf("fileio write %.6f read %.6f bytes %ld\n", t1 - t0, t2 - t1, blocks * BLOCK);
    return 0;
}
