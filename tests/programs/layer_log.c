/* Appends numbered records to a file of the writable layer, fsync after each, and says
 * so on stdout, so that a test can run two enclaves on one instance, or kill one in the
 * middle. argv: write FILE N DELAY_MS  (records 0..N-1, "fsynced i" after each)
 *               check FILE             (records 0, 1, ... in order, nothing else:
 *                                       prints "<count> records ok")
 * A record is "record <i>\n". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "write") == 0) {
        int n = atoi(argv[3]), delay = argc > 4 ? atoi(argv[4]) : 0;
        int fd = open(argv[2], O_CREAT | O_WRONLY | O_APPEND, 0644);
        if (fd < 0) { perror("open"); return 1; }
        for (int i = 0; i < n; i++) {
            char rec[32];
            int len = snprintf(rec, sizeof rec, "record %d\n", i);
            if (write(fd, rec, len) != len || fsync(fd) != 0) { perror("write"); return 1; }
            printf("fsynced %d\n", i);
            fflush(stdout);
            struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        close(fd);
        printf("done\n");
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "check") == 0) {
        FILE *f = fopen(argv[2], "r");
        if (!f) { perror("fopen"); return 1; }
        char line[64];
        int i = 0;
        while (fgets(line, sizeof line, f)) {
            char want[32];
            snprintf(want, sizeof want, "record %d\n", i);
            if (strcmp(line, want) != 0) { printf("bad record %d: %s", i, line); return 1; }
            i++;
        }
        printf("%d records ok\n", i);
        return 0;
    }
    fprintf(stderr, "usage: layer_log write FILE N [DELAY_MS] | check FILE\n");
    return 2;
}
