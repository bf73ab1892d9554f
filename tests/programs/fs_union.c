/* The unionfs at /: changes to files of the image (copy-up, whiteouts, opaque
 * directories), made by "fs_union change" and checked again by "fs_union check" in a
 * later run of the same instance. The image must hold (tests/test_libos_fs.py makes it):
 *   /data/orig.txt "original\n"   /data/gone.txt   /data/ren.txt "rename me\n"
 *   /data/full/{a,b}   /data/empty/   /data/link -> orig.txt   /data/mode.txt (0644)
 *   /data/trunc.txt "0123456789"
 * Prints failed checks and exits with their number; "fs union <mode> ok" otherwise. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fails;
#define CHECK(cond) do { if (!(cond)) { printf("FAIL line %d: %s (errno %d: %s)\n", __LINE__, #cond, \
                                               errno, strerror(errno)); fails++; } } while (0)

static int is(const char *path, const char *expect) {
    char buf[256];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0) return 0;
    buf[n] = 0;
    if (strcmp(buf, expect)) printf("%s holds \"%s\", expected \"%s\"\n", path, buf, expect);
    return strcmp(buf, expect) == 0;
}

static int absent(const char *path) {
    struct stat st;
    return lstat(path, &st) == -1 && errno == ENOENT;
}

/* the names in `dir` (without . and ..), sorted, joined by spaces */
static char *listing(const char *dir) {
    static char out[1024];
    char names[32][64];
    int count = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    out[0] = 0;
    if (!d) return out;
    while ((e = readdir(d)) != NULL && count < 32)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            snprintf(names[count++], 64, "%s", e->d_name);
    closedir(d);
    qsort(names, count, 64, (int (*)(const void *, const void *))strcmp);
    for (int i = 0; i < count; i++) {
        if (i) strcat(out, " ");
        strcat(out, names[i]);
    }
    return out;
}

static const char *FINAL = "full link mode.txt new.txt orig.txt orig2 renamed.txt trunc.txt";

static void check_state(void) {
    struct stat st, st2;
    CHECK(is("/data/orig.txt", "original\nmore\n"));
    CHECK(is("/data/link", "original\nmore\n"));
    CHECK(is("/data/orig2", "original\nmore\n"));
    CHECK(stat("/data/orig.txt", &st) == 0 && stat("/data/orig2", &st2) == 0 && st.st_nlink == 2);
    CHECK(absent("/data/gone.txt") && absent("/data/ren.txt") && absent("/data/empty"));
    CHECK(is("/data/renamed.txt", "rename me\n"));
    CHECK(is("/data/new.txt", "fresh\n"));
    CHECK(is("/data/trunc.txt", "0123"));
    CHECK(stat("/data/mode.txt", &st) == 0 && (st.st_mode & 07777) == 0600);
    CHECK(stat("/data/full", &st) == 0 && S_ISDIR(st.st_mode) && strcmp(listing("/data/full"), "") == 0);
    char *names = listing("/data");
    if (strcmp(names, FINAL)) printf("/data lists \"%s\"\n", names);
    CHECK(strcmp(names, FINAL) == 0);
}

static void change(void) {
    struct stat before, after;
    CHECK(is("/data/orig.txt", "original\n"));
    CHECK(stat("/data/orig.txt", &before) == 0);
    int fd = open("/data/orig.txt", O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write(fd, "more\n", 5) == 5);
    close(fd);
    CHECK(stat("/data/orig.txt", &after) == 0 && after.st_ino == before.st_ino && after.st_size == 14);
    /* whiteouts */
    CHECK(unlink("/data/gone.txt") == 0 && absent("/data/gone.txt"));
    CHECK(unlink("/data/gone.txt") == -1 && errno == ENOENT);
    CHECK(rmdir("/data/empty") == 0 && absent("/data/empty"));
    /* an opaque directory where a full one was */
    CHECK(rmdir("/data/full") == -1 && errno == ENOTEMPTY);
    CHECK(unlink("/data/full/a") == 0 && unlink("/data/full/b") == 0 && rmdir("/data/full") == 0);
    CHECK(mkdir("/data/full", 0755) == 0);
    CHECK(strcmp(listing("/data/full"), "") == 0 && absent("/data/full/a"));
    /* rename, link, chmod, truncate of image files */
    CHECK(rename("/data/ren.txt", "/data/renamed.txt") == 0);
    CHECK(link("/data/orig.txt", "/data/orig2") == 0);
    CHECK(stat("/data/orig2", &after) == 0 && after.st_nlink == 2);
    CHECK(chmod("/data/mode.txt", 0600) == 0);
    CHECK(truncate("/data/trunc.txt", 4) == 0);
    CHECK(rename("/data", "/data2") == -1 && errno == EXDEV);     /* a merged directory */
    char target[64] = {0};
    CHECK(readlink("/data/link", target, sizeof target) == 8 && strcmp(target, "orig.txt") == 0);
    fd = open("/data/new.txt", O_CREAT | O_EXCL | O_WRONLY, 0644);
    CHECK(fd >= 0 && write(fd, "fresh\n", 6) == 6 && fsync(fd) == 0);
    close(fd);
    /* a name removed and made again is a new file */
    CHECK(symlink("x", "/data/gone.txt") == 0 && unlink("/data/gone.txt") == 0 && absent("/data/gone.txt"));
    check_state();
}

int main(int argc, char **argv) {
    if (argc < 2) return 100;
    if (!strcmp(argv[1], "change")) change();
    else if (!strcmp(argv[1], "check")) check_state();
    else return 100;
    if (fails) {
        printf("%d checks failed\n", fails);
        return fails > 99 ? 99 : fails;
    }
    printf("fs union %s ok\n", argv[1]);
    return 0;
}
