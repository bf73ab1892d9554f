/* hostfs at /host: reading and writing host files, and no way out of the folder.
 * The host folder holds in.txt "from the host\n", inlink -> in.txt, abs_in ->
 * /host/in.txt, rel -> ../outside, abs -> <the host path of outside>, deep/; next to
 * the folder, outside/secret.txt, which the enclave must never reach.
 * Prints failed checks and exits with their number; "fs host ok" otherwise. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fails;
#define CHECK(cond) do { if (!(cond)) { printf("FAIL line %d: %s (errno %d: %s)\n", __LINE__, #cond, \
                                               errno, strerror(errno)); fails++; } } while (0)

static int holds(const char *path, const char *expect) {
    char buf[256];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    return n >= 0 && strcmp(buf, expect) == 0;
}

static int unreachable(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        char buf[64] = {0};
        read(fd, buf, sizeof buf - 1);
        printf("ESCAPE: %s opened (%s)\n", path, buf);
        close(fd);
        return 0;
    }
    return errno == ENOENT || errno == ENOTDIR;
}

int main(void) {
    CHECK(holds("/host/in.txt", "from the host\n"));
    CHECK(holds("/host/inlink", "from the host\n"));
    CHECK(holds("/host/abs_in", "from the host\n"));
    int fd = open("/host/out.txt", O_CREAT | O_TRUNC | O_WRONLY, 0640);
    CHECK(fd >= 0 && write(fd, "from the enclave\n", 17) == 17 && fsync(fd) == 0);
    close(fd);
    CHECK(holds("/host/out.txt", "from the enclave\n"));
    CHECK(mkdir("/host/made", 0755) == 0 && rename("/host/out.txt", "/host/made/out.txt") == 0);
    CHECK(rename("/host/made/out.txt", "/host/out.txt") == 0 && rmdir("/host/made") == 0);
    /* every way out of the folder */
    CHECK(unreachable("/host/rel/secret.txt"));
    CHECK(unreachable("/host/abs/secret.txt"));
    CHECK(unreachable("/host/../outside/secret.txt"));
    CHECK(unreachable("/host/deep/../../outside/secret.txt"));
    CHECK(unreachable("/host/deep/../../../../../../../outside/secret.txt"));
    CHECK(chdir("/host/deep") == 0);
    CHECK(unreachable("../../outside/secret.txt"));
    CHECK(unreachable("../rel/secret.txt"));
    char target[256] = {0};
    CHECK(readlink("/host/rel", target, sizeof target) == 10 && strcmp(target, "../outside") == 0);
    /* a link made in the enclave is the enclave's path, never the host's */
    CHECK(symlink("/etc", "/host/made_link") == 0);
    CHECK(unreachable("/host/made_link/passwd"));
    CHECK(symlink("../../..", "/host/deep/up") == 0);
    CHECK(unreachable("/host/deep/up/outside/secret.txt"));
    struct stat st;
    CHECK(stat("/host/deep/up", &st) == 0 && S_ISDIR(st.st_mode));
    /* hard links and renames stay inside their file system */
    CHECK(link("/host/in.txt", "/in-link") == -1 && errno == EXDEV);
    CHECK(rename("/host/in.txt", "/moved.txt") == -1 && errno == EXDEV);
    if (fails) {
        printf("%d checks failed\n", fails);
        return fails > 99 ? 99 : fails;
    }
    printf("fs host ok\n");
    return 0;
}
