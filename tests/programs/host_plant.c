/* The attack of issue 7 (section 5): plant a symbolic link through /host, then make the
 * writable layer commit. argv: [1] where to plant the link (a guest path), [2] its target
 * (a host path), [3] a file of the writable layer to write and fsync, [4] its content.
 * Prints what each step gave, and what FILE held before (an earlier run's content);
 * the host side checks that no host file changed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: host_plant LINK TARGET FILE TEXT\n");
        return 2;
    }
    char old[64] = "none";
    int rfd = open(argv[3], O_RDONLY);
    if (rfd >= 0) {
        ssize_t got = read(rfd, old, sizeof old - 1);
        old[got > 0 ? got : 0] = 0;
        close(rfd);
    }
    printf("was: %s\n", old);
    if (symlink(argv[2], argv[1]) == 0)
        printf("plant: ok\n");
    else
        printf("plant: %s\n", errno == EACCES ? "EACCES" : errno == ENOENT ? "ENOENT"
               : errno == EEXIST ? "EEXIST" : strerror(errno));
    int fd = open(argv[3], O_CREAT | O_TRUNC | O_WRONLY, 0644);
    size_t n = strlen(argv[4]);
    if (fd < 0 || write(fd, argv[4], n) != (ssize_t)n || fsync(fd) != 0) {
        printf("write: %s\n", strerror(errno));
        return 1;
    }
    close(fd);
    printf("write: ok\n");
    return 0;
}
