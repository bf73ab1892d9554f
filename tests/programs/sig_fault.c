/* CPU faults delivered to handlers: a SIGSEGV handler that siglongjmps out, one that
 * mprotects the page and returns (the faulting store runs again), si_addr and si_code,
 * SIGFPE from a division by zero; and an unhandled fault after the handler is reset
 * kills with SIGSEGV. Exits with the number of the first failed check. */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHECK(n, cond) do { if (!(cond)) { fprintf(stderr, "check %d failed: %s\n", n, #cond); exit(n); } } while (0)

/* the LibOS reports the faulting page, not the byte (Unicorn's TLB fill sees pages) */
#define SAME_PAGE(a, b) (((uintptr_t)(a) & ~(uintptr_t)4095) == ((uintptr_t)(b) & ~(uintptr_t)4095))

static sigjmp_buf env;
static volatile void *fault_addr;
static volatile int fault_code, hits;
static char *page;

static void jump_out(int sig, siginfo_t *info, void *uc) {
    (void)uc; hits++; fault_addr = info->si_addr; fault_code = info->si_code;
    siglongjmp(env, sig);
}
static void fix_up(int sig, siginfo_t *info, void *uc) {
    (void)sig; (void)uc; hits++; fault_addr = info->si_addr; fault_code = info->si_code;
    mprotect(page, 4096, PROT_READ | PROT_WRITE);
}

int main(int argc, char **argv) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = jump_out; sa.sa_flags = SA_SIGINFO;
    CHECK(1, sigaction(SIGSEGV, &sa, NULL) == 0);
    volatile int *bad = (int *)0x10;
    int r = sigsetjmp(env, 1);
    if (r == 0) {
        *bad = 1;
        CHECK(2, 0);
    }
    CHECK(3, r == SIGSEGV && hits == 1 && SAME_PAGE(fault_addr, 0x10) && fault_code == SEGV_MAPERR);
    /* the mask was restored by siglongjmp: a second fault is delivered too */
    r = sigsetjmp(env, 1);
    if (r == 0) { *bad = 2; CHECK(4, 0); }
    CHECK(5, hits == 2);
    /* a handler that fixes the page and returns: the store runs again */
    page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(6, page != MAP_FAILED);
    sa.sa_sigaction = fix_up;
    sigaction(SIGSEGV, &sa, NULL);
    ((volatile char *)page)[100] = 42;
    CHECK(7, hits == 3 && page[100] == 42 && SAME_PAGE(fault_addr, page + 100) && fault_code == SEGV_ACCERR);
    /* SIGFPE */
    sa.sa_sigaction = jump_out;
    sigaction(SIGFPE, &sa, NULL);
    volatile int zero = 0;
    r = sigsetjmp(env, 1);
    if (r == 0) { volatile int x = 10 / zero; (void)x; CHECK(8, 0); }
    CHECK(9, r == SIGFPE && hits == 4);
    if (argc > 1 && strcmp(argv[1], "badstack") == 0) {
        /* an alternate stack that is not mapped: the frame cannot be written */
        char *gone = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        munmap(gone, 65536);
        stack_t ss = {.ss_sp = gone, .ss_size = 65536, .ss_flags = 0};
        CHECK(11, sigaltstack(&ss, NULL) == 0);
        sa.sa_sigaction = fix_up; sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigaction(SIGUSR1, &sa, NULL);
        raise(SIGUSR1);
        return 12;
    }
    if (argc > 1) {
        /* a blocked fault signal takes the default action */
        sigset_t set; sigemptyset(&set); sigaddset(&set, SIGSEGV);
        sigprocmask(SIG_BLOCK, &set, NULL);
        *bad = 3;
        return 10;
    }
    puts("sig_fault ok");
    return 0;
}
