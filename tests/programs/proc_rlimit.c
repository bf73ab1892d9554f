/* Per-process limits as Occlum's ulimit: RLIMIT_STACK and RLIMIT_DATA set in a parent
 * size the stack and heap of the programs it spawns (and the child inherits them).
 * As "child", reports its own limits and checks a heap allocation against them. */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(n, cond) do { if (!(cond)) { printf("check %d failed: %s (errno %d)\n", n, #cond, errno); return n; } } while (0)

extern char **environ;

/* musl's sbrk refuses any increment: grow the break with the system call itself */
static int grow_brk(unsigned long bytes) {
    unsigned long cur = syscall(SYS_brk, 0);
    return (unsigned long)syscall(SYS_brk, cur + bytes) == cur + bytes;
}

int main(int argc, char **argv) {
    struct rlimit r;
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        CHECK(20, getrlimit(RLIMIT_DATA, &r) == 0 && r.rlim_cur == 8UL << 20);
        CHECK(21, getrlimit(RLIMIT_STACK, &r) == 0 && r.rlim_cur == 1UL << 20);
        /* a heap of 8 MiB: 4 MiB more break fits, 16 MiB does not */
        CHECK(22, grow_brk(4 << 20));
        CHECK(23, !grow_brk(16 << 20));
        /* RLIMIT_AS of 64 MiB covers image, heap, stack and mappings together */
        CHECK(24, getrlimit(RLIMIT_AS, &r) == 0 && r.rlim_cur == 64UL << 20);
        void *a = mmap(NULL, 16 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(25, a != MAP_FAILED);
        void *b = mmap(NULL, 48 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(26, b == MAP_FAILED && errno == ENOMEM);
        printf("child ok\n");
        return 0;
    }
    CHECK(1, getrlimit(RLIMIT_DATA, &r) == 0 && r.rlim_cur == 32UL << 20);
    r.rlim_cur = 8UL << 20;
    CHECK(2, setrlimit(RLIMIT_DATA, &r) == 0);
    CHECK(3, getrlimit(RLIMIT_STACK, &r) == 0);
    r.rlim_cur = 1UL << 20;
    CHECK(4, setrlimit(RLIMIT_STACK, &r) == 0);
    CHECK(9, getrlimit(RLIMIT_AS, &r) == 0);
    r.rlim_cur = 64UL << 20;
    CHECK(10, setrlimit(RLIMIT_AS, &r) == 0);
    /* the parent itself keeps its mappings (the limit sizes what it spawns) */
    CHECK(11, mmap(NULL, 96 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED);
    /* the parent's own heap is unchanged: 16 MiB of brk still fits */
    CHECK(5, grow_brk(16 << 20));
    pid_t pid;
    char *args[] = {argv[0], "child", NULL};
    CHECK(6, posix_spawn(&pid, argv[0], NULL, NULL, args, environ) == 0);
    int status;
    CHECK(7, waitpid(pid, &status, 0) == pid);
    CHECK(8, WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("rlimit ok\n");
    return 0;
}
