/* One file across runs of an instance: "write PATH TEXT", "read PATH TEXT" (exit 0
 * when PATH holds TEXT), "absent PATH" (exit 0 when PATH does not exist), "mapwrite
 * PATH TEXT" (TEXT written through a shared mapping that the program never unmaps). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char buf[4096];
    if (argc == 4 && !strcmp(argv[1], "write")) {
        int fd = open(argv[2], O_CREAT | O_TRUNC | O_WRONLY, 0600);
        if (fd < 0 || write(fd, argv[3], strlen(argv[3])) != (ssize_t)strlen(argv[3]) || close(fd)) {
            printf("write %s: %s\n", argv[2], strerror(errno));
            return 1;
        }
        printf("wrote %s\n", argv[2]);
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "mapwrite")) {
        size_t len = strlen(argv[3]);
        int fd = open(argv[2], O_CREAT | O_TRUNC | O_RDWR, 0600);
        if (fd < 0 || ftruncate(fd, len)) {
            printf("mapwrite %s: %s\n", argv[2], strerror(errno));
            return 1;
        }
        char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            printf("mmap %s: %s\n", argv[2], strerror(errno));
            return 1;
        }
        close(fd);
        memcpy(p, argv[3], len);
        printf("mapped %s\n", argv[2]);
        return 0;                       /* written back when the process ends */
    }
    if (argc == 4 && !strcmp(argv[1], "read")) {
        int fd = open(argv[2], O_RDONLY);
        if (fd < 0) {
            printf("read %s: %s\n", argv[2], strerror(errno));
            return 2;
        }
        ssize_t n = read(fd, buf, sizeof buf - 1);
        if (n < 0) {
            printf("read %s: %s\n", argv[2], strerror(errno));
            return 6;
        }
        buf[n] = 0;
        printf("%s holds \"%s\"\n", argv[2], buf);
        return strcmp(buf, argv[3]) ? 3 : 0;
    }
    if (argc == 3 && !strcmp(argv[1], "absent")) {
        if (access(argv[2], F_OK) == 0) {
            printf("%s exists\n", argv[2]);
            return 4;
        }
        printf("%s: %s\n", argv[2], strerror(errno));
        return errno == ENOENT ? 0 : 5;
    }
    return 100;
}
