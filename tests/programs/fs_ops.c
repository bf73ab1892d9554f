/* File system calls in the folder argv[1] (which must exist and be empty), checked
 * against Linux's behaviour: it runs natively as well as in the LibOS. Prints every
 * failed check and exits with the number of failures; "fs ops ok" when all pass. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static int fails;
#define CHECK(cond) do { if (!(cond)) { printf("FAIL line %d: %s (errno %d: %s)\n", __LINE__, #cond, \
                                               errno, strerror(errno)); fails++; } } while (0)

static int read_all(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0) return -1;
    buf[n] = 0;
    return (int)n;
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int is_zero(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) if (p[i]) return 0;
    return 1;
}

static void io(void) {
    char buf[16384];
    umask(022);
    int fd = open("a", O_CREAT | O_EXCL | O_RDWR, 0666);
    CHECK(fd >= 0);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644 && st.st_size == 0);
    CHECK(open("a", O_CREAT | O_EXCL | O_RDWR, 0666) == -1 && errno == EEXIST);
    CHECK(write(fd, "hello", 5) == 5);
    CHECK(lseek(fd, 0, SEEK_CUR) == 5);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    CHECK(read(fd, buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0);
    CHECK(read(fd, buf, sizeof buf) == 0);
    CHECK(pwrite(fd, "J", 1, 0) == 1 && pread(fd, buf, 5, 0) == 5 && memcmp(buf, "Jello", 5) == 0);
    CHECK(lseek(fd, 0, SEEK_CUR) == 5);                   /* pread/pwrite leave the offset */
    CHECK(lseek(fd, -1, SEEK_SET) == -1 && errno == EINVAL);
    CHECK(pread(fd, buf, 1, -1) == -1 && errno == EINVAL);
    /* O_APPEND writes at the end whatever the offset */
    int ap = open("a", O_WRONLY | O_APPEND);
    CHECK(ap >= 0 && lseek(ap, 0, SEEK_SET) == 0 && write(ap, "XY", 2) == 2);
    CHECK(lseek(ap, 0, SEEK_CUR) == 7);
    close(ap);
    CHECK(pread(fd, buf, 16, 0) == 7 && memcmp(buf, "JelloXY", 7) == 0);
    /* past the end: a hole that reads as zeros */
    CHECK(lseek(fd, 10000, SEEK_SET) == 10000 && write(fd, "Z", 1) == 1);
    CHECK(fstat(fd, &st) == 0 && st.st_size == 10001);
    CHECK(pread(fd, buf, 9000, 7) == 9000 && is_zero(buf, 9000));
    CHECK(pread(fd, buf, 10, 9995) == 6 && buf[5] == 'Z');
    CHECK(lseek(fd, -1, SEEK_END) == 10000 && lseek(fd, 2, SEEK_CUR) == 10002);
    int nread = -1;
    CHECK(lseek(fd, 9000, SEEK_SET) == 9000 && ioctl(fd, FIONREAD, &nread) == 0 && nread == 1001);
    /* ftruncate shrinks and grows (with zeros) */
    CHECK(ftruncate(fd, 3) == 0 && fstat(fd, &st) == 0 && st.st_size == 3);
    CHECK(ftruncate(fd, 8192) == 0 && pread(fd, buf, 8192, 0) == 8192 && memcmp(buf, "Jel", 3) == 0
          && is_zero(buf + 3, 8189));
    CHECK(ftruncate(fd, -1) == -1 && errno == EINVAL);
    CHECK(truncate("a", 2) == 0 && stat("a", &st) == 0 && st.st_size == 2);
    int ro = open("a", O_RDONLY);
    CHECK(ro >= 0 && ftruncate(ro, 0) == -1 && (errno == EINVAL || errno == EBADF));
    CHECK(write(ro, "x", 1) == -1 && errno == EBADF);
    close(ro);
    /* O_TRUNC */
    int tr = open("a", O_RDWR | O_TRUNC);
    CHECK(tr >= 0 && fstat(tr, &st) == 0 && st.st_size == 0);
    close(tr);
    /* readv / writev */
    struct iovec w[3] = {{"one ", 4}, {"two ", 4}, {"three", 5}};
    CHECK(lseek(fd, 0, SEEK_SET) == 0 && writev(fd, w, 3) == 13);
    char r1[5] = {0}, r2[20] = {0};
    struct iovec r[2] = {{r1, 4}, {r2, sizeof r2 - 1}};
    CHECK(lseek(fd, 0, SEEK_SET) == 0 && readv(fd, r, 2) == 13 && memcmp(r1, "one ", 4) == 0
          && strcmp(r2, "two three") == 0);
    /* a big write and read: more than one block, at an odd offset */
    static char big[100000], back[100000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (char)(i * 7 + 3);
    CHECK(pwrite(fd, big, sizeof big, 4097) == (ssize_t)sizeof big);
    CHECK(pread(fd, back, sizeof back, 4097) == (ssize_t)sizeof back && memcmp(big, back, sizeof big) == 0);
    CHECK(fsync(fd) == 0 && fdatasync(fd) == 0);
    close(fd);
    CHECK(read(fd, buf, 1) == -1 && errno == EBADF);
    CHECK(close(fd) == -1 && errno == EBADF);
}

static void descriptors(void) {
    int fd = open("a", O_RDWR);
    CHECK(fd >= 0);
    /* dup shares the offset and the status flags */
    int d = dup(fd);
    CHECK(d > fd);
    CHECK(lseek(fd, 3, SEEK_SET) == 3 && lseek(d, 0, SEEK_CUR) == 3);
    CHECK(dup2(fd, 50) == 50 && fcntl(50, F_GETFD) == 0);
    CHECK(dup2(50, 50) == 50);
    CHECK(dup3(fd, 51, O_CLOEXEC) == 51 && fcntl(51, F_GETFD) == FD_CLOEXEC);
    CHECK(dup3(fd, fd, 0) == -1 && errno == EINVAL);
    CHECK(fcntl(51, F_SETFD, 0) == 0 && fcntl(51, F_GETFD) == 0);
    CHECK(fcntl(50, F_SETFD, FD_CLOEXEC) == 0 && fcntl(50, F_GETFD) == FD_CLOEXEC && fcntl(fd, F_GETFD) == 0);
    CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR && !(fcntl(fd, F_GETFL) & O_APPEND));
    CHECK(fcntl(d, F_SETFL, O_APPEND | O_NONBLOCK) == 0 && (fcntl(fd, F_GETFL) & O_APPEND)
          && (fcntl(fd, F_GETFL) & O_NONBLOCK));
    CHECK(fcntl(d, F_SETFL, 0) == 0 && !(fcntl(fd, F_GETFL) & O_APPEND));
    int c = fcntl(fd, F_DUPFD_CLOEXEC, 60);
    CHECK(c >= 60 && fcntl(c, F_GETFD) == FD_CLOEXEC);
    CHECK(fcntl(fd, F_DUPFD, 60) > c);
    int ocl = open("a", O_RDONLY | O_CLOEXEC);
    CHECK(ocl >= 0 && fcntl(ocl, F_GETFD) == FD_CLOEXEC);
    close(ocl);
    CHECK(dup(1000) == -1 && errno == EBADF);
    CHECK(fcntl(999, F_GETFD) == -1 && errno == EBADF);
    /* RLIMIT_NOFILE: EMFILE at the limit, EBADF for dup2 beyond it */
    struct rlimit old, lim;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    lim.rlim_cur = 32;
    lim.rlim_max = old.rlim_max;
    for (int i = 3; i < 1024; i++) if (i != fd) close(i);
    CHECK(setrlimit(RLIMIT_NOFILE, &lim) == 0);
    int last = -1, opened = 0;
    for (;;) {
        int f = open("a", O_RDONLY);
        if (f < 0) break;
        last = f;
        opened++;
    }
    CHECK(errno == EMFILE && last == 31 && opened == 32 - 4);
    CHECK(dup(fd) == -1 && errno == EMFILE);
    CHECK(dup2(fd, 40) == -1 && errno == EBADF);
    CHECK(open("new-at-emfile", O_CREAT | O_RDWR, 0644) == -1 && errno == EMFILE);
    CHECK(access("new-at-emfile", F_OK) == -1 && errno == ENOENT);
    for (int i = 4; i <= last; i++) if (i != fd) close(i);
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
    close(fd);
}

static void names(void) {
    char buf[256];
    struct stat st;
    CHECK(write_file("b", "bee") == 0);
    CHECK(rename("b", "c") == 0 && access("b", F_OK) == -1 && errno == ENOENT);
    CHECK(read_all("c", buf, sizeof buf) == 3 && strcmp(buf, "bee") == 0);
    CHECK(write_file("e", "eee") == 0 && rename("c", "e") == 0);     /* replaces e */
    CHECK(read_all("e", buf, sizeof buf) == 3 && strcmp(buf, "bee") == 0);
    CHECK(rename("nothere", "x") == -1 && errno == ENOENT);
    /* hard links */
    CHECK(link("e", "f") == 0 && stat("e", &st) == 0 && st.st_nlink == 2);
    struct stat st2;
    CHECK(stat("f", &st2) == 0 && st2.st_ino == st.st_ino);
    CHECK(link("e", "f") == -1 && errno == EEXIST);
    CHECK(unlink("e") == 0 && stat("f", &st) == 0 && st.st_nlink == 1);
    CHECK(read_all("f", buf, sizeof buf) == 3 && strcmp(buf, "bee") == 0);
    /* symbolic links */
    CHECK(symlink("f", "s") == 0);
    CHECK(readlink("s", buf, sizeof buf) == 1 && buf[0] == 'f');
    CHECK(syscall(SYS_readlink, "s", buf, 0) == -1 && errno == EINVAL);
    CHECK(readlink("f", buf, sizeof buf) == -1 && errno == EINVAL);
    CHECK(lstat("s", &st) == 0 && S_ISLNK(st.st_mode) && st.st_size == 1);
    CHECK(stat("s", &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 3);
    CHECK(read_all("s", buf, sizeof buf) == 3 && strcmp(buf, "bee") == 0);
    CHECK(open("s", O_RDONLY | O_NOFOLLOW) == -1 && errno == ELOOP);
    int p = open("s", O_PATH | O_NOFOLLOW);
    CHECK(p >= 0 && fstat(p, &st) == 0 && S_ISLNK(st.st_mode) && read(p, buf, 1) == -1 && errno == EBADF);
    close(p);
    CHECK(symlink("l2", "l1") == 0 && symlink("l1", "l2") == 0);
    CHECK(open("l1", O_RDONLY) == -1 && errno == ELOOP);
    CHECK(symlink("nowhere", "dangling") == 0 && stat("dangling", &st) == -1 && errno == ENOENT);
    CHECK(lstat("dangling", &st) == 0);
    CHECK(symlink("x", "s") == -1 && errno == EEXIST);
    CHECK(unlink("s") == 0 && stat("f", &st) == 0);                /* the link, not its target */
    /* directories */
    CHECK(mkdir("dir", 0777) == 0 && stat("dir", &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0755);
    CHECK(mkdir("dir", 0777) == -1 && errno == EEXIST);
    CHECK(write_file("dir/inner", "in") == 0);
    CHECK(rmdir("dir") == -1 && errno == ENOTEMPTY);
    CHECK(unlink("dir") == -1 && (errno == EISDIR || errno == EPERM));
    CHECK(rmdir("f") == -1 && errno == ENOTDIR);
    CHECK(open("f/x", O_RDONLY) == -1 && errno == ENOTDIR);
    CHECK(open("dir", O_WRONLY) == -1 && errno == EISDIR);
    CHECK(open("f", O_RDONLY | O_DIRECTORY) == -1 && errno == ENOTDIR);
    CHECK(rename("dir", "dir/sub") == -1 && errno == EINVAL);
    CHECK(mkdir("dir2", 0755) == 0 && rename("dir2", "dir") == -1 && errno == ENOTEMPTY);
    CHECK(rename("f", "dir2") == -1 && errno == EISDIR);
    CHECK(rmdir("dir2") == 0 && rename("dir", "dir2") == 0 && read_all("dir2/inner", buf, sizeof buf) == 2);
    CHECK(unlink("dir2/inner") == 0 && rmdir("dir2") == 0 && access("dir2", F_OK) == -1);
    CHECK(rmdir(".") == -1 && errno == EINVAL);
    CHECK(mkdir("..", 0755) == -1 && errno == EEXIST);
    /* unlinked while open: still readable and writable */
    int fd = open("f", O_RDWR);
    CHECK(fd >= 0 && unlink("f") == 0 && access("f", F_OK) == -1);
    CHECK(pread(fd, buf, 3, 0) == 3 && memcmp(buf, "bee", 3) == 0);
    CHECK(pwrite(fd, "BEE", 3, 0) == 3 && pread(fd, buf, 3, 0) == 3 && memcmp(buf, "BEE", 3) == 0);
    CHECK(fstat(fd, &st) == 0 && st.st_nlink == 0 && st.st_size == 3);
    close(fd);
}

static void listing(void) {
    CHECK(mkdir("g", 0755) == 0);
    CHECK(write_file("g/x1", "1") == 0 && write_file("g/x2", "2") == 0 && mkdir("g/sub", 0700) == 0);
    CHECK(symlink("x1", "g/ln") == 0);
    DIR *dir = opendir("g");
    CHECK(dir != NULL);
    int seen = 0, count = 0;
    struct dirent *e;
    while (dir && (e = readdir(dir)) != NULL) {
        count++;
        if (!strcmp(e->d_name, ".") && e->d_type == DT_DIR) seen |= 1;
        else if (!strcmp(e->d_name, "..") && e->d_type == DT_DIR) seen |= 2;
        else if (!strcmp(e->d_name, "x1") && e->d_type == DT_REG) seen |= 4;
        else if (!strcmp(e->d_name, "x2") && e->d_type == DT_REG) seen |= 8;
        else if (!strcmp(e->d_name, "sub") && e->d_type == DT_DIR) seen |= 16;
        else if (!strcmp(e->d_name, "ln") && e->d_type == DT_LNK) seen |= 32;
        else printf("unexpected entry %s (type %d)\n", e->d_name, e->d_type);
    }
    CHECK(seen == 63 && count == 6);
    if (dir) {
        rewinddir(dir);
        count = 0;
        while (readdir(dir)) count++;
        CHECK(count == 6);
        closedir(dir);
    }
    /* a buffer too small for one record */
    int fd = open("g", O_RDONLY | O_DIRECTORY);
    char tiny[8];
    CHECK(fd >= 0 && syscall(SYS_getdents64, fd, tiny, sizeof tiny) == -1 && errno == EINVAL);
    int file = open("g/x1", O_RDONLY);
    char big[1024];
    CHECK(syscall(SYS_getdents64, file, big, sizeof big) == -1 && errno == ENOTDIR);
    close(file);
    /* *at calls relative to a directory descriptor */
    int f = openat(fd, "x2", O_RDONLY);
    char c = 0;
    CHECK(f >= 0 && read(f, &c, 1) == 1 && c == '2');
    close(f);
    struct stat st;
    CHECK(fstatat(fd, "ln", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode));
    CHECK(fstatat(fd, "ln", &st, 0) == 0 && S_ISREG(st.st_mode) && st.st_size == 1);
    CHECK(fstatat(fd, "", &st, AT_EMPTY_PATH) == 0 && S_ISDIR(st.st_mode));
    CHECK(fstatat(fd, "", &st, 0) == -1 && errno == ENOENT);
    CHECK(mkdirat(fd, "made", 0755) == 0 && unlinkat(fd, "made", AT_REMOVEDIR) == 0);
    CHECK(symlinkat("x2", fd, "ln2") == 0);
    char target[16] = {0};
    CHECK(readlinkat(fd, "ln2", target, sizeof target) == 2 && strcmp(target, "x2") == 0);
    CHECK(renameat(fd, "ln2", fd, "ln3") == 0 && unlinkat(fd, "ln3", 0) == 0);
    CHECK(linkat(fd, "x2", fd, "x2b", 0) == 0 && unlinkat(fd, "x2b", 0) == 0);
    CHECK(faccessat(fd, "x1", R_OK | W_OK, 0) == 0);
    CHECK(openat(file, "x", O_RDONLY) == -1 && (errno == EBADF || errno == ENOTDIR));
    int notdir = open("g/x1", O_RDONLY);
    CHECK(openat(notdir, "x", O_RDONLY) == -1 && errno == ENOTDIR);
    close(notdir);
#ifdef SYS_statx
    char sx[256];
    CHECK(syscall(SYS_statx, fd, "x1", 0, 0x7ff, sx) == 0);
    unsigned long long sx_size;
    memcpy(&sx_size, sx + 40, 8);
    CHECK(sx_size == 1);
#endif
    close(fd);
}

static void cwd_and_attributes(const char *top) {
    char buf[PATH_MAX];
    CHECK(getcwd(buf, sizeof buf) != NULL && strcmp(buf, top) == 0);
    CHECK(chdir("g") == 0 && getcwd(buf, sizeof buf) != NULL);
    char expect[PATH_MAX];
    snprintf(expect, sizeof expect, "%s/g", strcmp(top, "/") ? top : "");
    CHECK(strcmp(buf, expect) == 0);
    CHECK(access("x1", F_OK) == 0);
    CHECK(getcwd(buf, 2) == NULL && errno == ERANGE);
    int fd = open(".", O_RDONLY | O_DIRECTORY);
    CHECK(chdir("..") == 0 && fchdir(fd) == 0 && access("x2", F_OK) == 0);
    close(fd);
    CHECK(chdir("/") == 0 && chdir("..") == 0 && getcwd(buf, sizeof buf) && strcmp(buf, "/") == 0);
    CHECK(chdir("/../../..") == 0 && getcwd(buf, sizeof buf) && strcmp(buf, "/") == 0);
    CHECK(chdir(top) == 0);
    CHECK(chdir("g/x1") == -1 && errno == ENOTDIR);
    /* mode, owner, times */
    struct stat st;
    CHECK(chmod("g/x1", 0600) == 0 && stat("g/x1", &st) == 0 && (st.st_mode & 07777) == 0600);
    int f = open("g/x1", O_RDONLY);
    CHECK(f >= 0 && fchmod(f, 0640) == 0 && fstat(f, &st) == 0 && (st.st_mode & 07777) == 0640);
    CHECK(fchown(f, 0, 0) == 0 && chown("g/x1", 0, 0) == 0 && lchown("g/ln", 0, 0) == 0);
    close(f);
    CHECK(chown("g/none", 0, 0) == -1 && errno == ENOENT);
    struct timespec times[2] = {{1000000000, 5}, {1200000000, 7}};
    CHECK(utimensat(AT_FDCWD, "g/x1", times, 0) == 0 && stat("g/x1", &st) == 0);
    CHECK(st.st_mtim.tv_sec == 1200000000 && st.st_atim.tv_sec == 1000000000);
    struct timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
    CHECK(utimensat(AT_FDCWD, "g/x1", omit, 0) == 0 && stat("g/x1", &st) == 0);
    CHECK(st.st_atim.tv_sec == 1000000000 && st.st_mtim.tv_sec > 1600000000);
    struct timespec bad[2] = {{0, 2000000000}, {0, 0}};
    CHECK(utimensat(AT_FDCWD, "g/x1", bad, 0) == -1 && errno == EINVAL);
    CHECK(access("g/x1", X_OK) == -1 && errno == EACCES);
    CHECK(access("g/nothere", F_OK) == -1 && errno == ENOENT);
    CHECK(access("g/x1", 8) == -1 && errno == EINVAL);
    mode_t old = umask(077);
    CHECK(old == 022 && umask(old) == 077);
    /* bad pointers */
    CHECK(open((char *)16, O_RDONLY) == -1 && errno == EFAULT);
    CHECK(syscall(SYS_stat, "g/x1", (struct stat *)16) == -1 && errno == EFAULT);
    CHECK(stat("", &st) == -1 && errno == ENOENT);
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    CHECK(open(longname, O_RDONLY) == -1 && errno == ENAMETOOLONG);
}

static void mappings(void) {
    char buf[16];
    int fd = open("m", O_CREAT | O_RDWR | O_TRUNC, 0644);
    static char page[6000];
    memset(page, 'a', sizeof page);
    CHECK(fd >= 0 && write(fd, page, sizeof page) == sizeof page);
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    if (p == MAP_FAILED) return;
    CHECK(p[0] == 'a' && p[5999] == 'a' && p[6000] == 0);
    p[0] = 'S';
    p[5000] = 'T';
    p[7000] = 'X';                          /* past the end of the file: never written back */
    CHECK(msync(p, 8192, MS_SYNC) == 0);
    CHECK(pread(fd, buf, 1, 0) == 1 && buf[0] == 'S' && pread(fd, buf, 1, 5000) == 1 && buf[0] == 'T');
    p[1] = 'U';
    CHECK(munmap(p, 8192) == 0);
    struct stat st;
    CHECK(pread(fd, buf, 2, 0) == 2 && buf[1] == 'U' && fstat(fd, &st) == 0 && st.st_size == 6000);
    CHECK(msync(p, 4096, MS_SYNC) == -1 && errno == ENOMEM);
    int ro = open("m", O_RDONLY);
    CHECK(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == MAP_FAILED && errno == EACCES);
    char *q = mmap(NULL, 4096, PROT_READ, MAP_SHARED, ro, 0);
    CHECK(q != MAP_FAILED && q[0] == 'S');
    if (q != MAP_FAILED) munmap(q, 4096);
    close(ro);
    close(fd);
}

static void extras(void) {
    struct statfs sf;
    struct stat st;
    CHECK(statfs(".", &sf) == 0 && sf.f_bsize > 0 && sf.f_namelen == 255);
    int fd = open("x", O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 0 && fstatfs(fd, &sf) == 0);
    CHECK(flock(fd, LOCK_EX) == 0 && flock(fd, LOCK_UN) == 0);
    CHECK(posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL) == 0);
    CHECK(fallocate(fd, 0, 0, 10000) == 0 && fstat(fd, &st) == 0 && st.st_size == 10000);
    CHECK(ftruncate(fd, 0) == 0 && write(fd, "sendfile data", 13) == 13);
    int out = open("y", O_CREAT | O_RDWR | O_TRUNC, 0644);
    off_t off = 4;
    CHECK(out >= 0 && sendfile(out, fd, &off, 100) == 9 && off == 13);
    CHECK(lseek(fd, 0, SEEK_SET) == 0 && sendfile(out, fd, NULL, 4) == 4 && lseek(fd, 0, SEEK_CUR) == 4);
    char buf[32] = {0};
    CHECK(pread(out, buf, sizeof buf, 0) == 13 && strcmp(buf, "file datasend") == 0);
    close(out);
    close(fd);
}

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1]) != 0) {
        printf("usage: fs_ops EMPTY_FOLDER (chdir failed: %s)\n", strerror(errno));
        return 100;
    }
    io();
    descriptors();
    names();
    listing();
    mappings();
    extras();
    cwd_and_attributes(argv[1]);
    if (fails) {
        printf("%d checks failed\n", fails);
        return fails > 99 ? 99 : fails;
    }
    printf("fs ops ok\n");
    return 0;
}
