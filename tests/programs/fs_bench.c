/* Write then read SIZE MiB (default 16) in 4 KiB blocks to/from PATH through the
 * file system, and print the throughput; exits non-zero if the data read back differs. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 2) return 100;
    long mib = argc > 2 ? atol(argv[2]) : 16, blocks = mib * 256;
    static char block[4096], back[4096];
    int fd = open(argv[1], O_CREAT | O_TRUNC | O_RDWR, 0600);
    if (fd < 0) { perror("open"); return 1; }
    double t0 = now();
    for (long i = 0; i < blocks; i++) {
        memset(block, (int)(i & 0xff), 16);
        if (write(fd, block, sizeof block) != sizeof block) { perror("write"); return 2; }
    }
    if (fsync(fd) || close(fd)) { perror("fsync"); return 3; }
    double t1 = now();
    fd = open(argv[1], O_RDONLY);
    for (long i = 0; i < blocks; i++) {
        if (read(fd, back, sizeof back) != sizeof back) { perror("read"); return 4; }
        if (back[0] != (char)(i & 0xff) || back[15] != (char)(i & 0xff)) { printf("block %ld differs\n", i); return 5; }
    }
    close(fd);
    double t2 = now();
    double mb = mib * 1048576 / 1e6;
    printf("write %.1f MB/s read %.1f MB/s both %.1f MB/s\n", mb / (t1 - t0), mb / (t2 - t1), 2 * mb / (t2 - t0));
    return 0;
}
