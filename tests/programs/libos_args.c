/* LibOS core test: prints argv and envp, checks the auxiliary vector and the stack
 * alignment; exits non-zero on the first wrong value. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

int main(int argc, char **argv, char **envp) {
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    for (char **e = envp; *e; e++) printf("env %s\n", *e);
    if (argv[argc] != NULL) return 10;
    const char *v = getenv("OCCLUM_TEST");
    if (!v || strcmp(v, "yes") != 0) return 11;
    if (getauxval(AT_PAGESZ) != 4096) return 12;
    if (getauxval(AT_PHDR) == 0 || getauxval(AT_PHNUM) == 0 || getauxval(AT_ENTRY) == 0) return 13;
    if (getauxval(AT_SECURE) != 0) return 14;
    unsigned char *rnd = (unsigned char *)getauxval(AT_RANDOM);
    int nonzero = 0;
    for (int i = 0; i < 16; i++) nonzero |= rnd[i];
    if (!nonzero) return 15;
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    if (!execfn || execfn[0] != '/') return 16;
    printf("execfn=%s\n", execfn);
    /* the ABI: 16-byte alignment is kept by the compiler from the entry's stack */
    long double x = 1.5L;  /* SSE/x87 spills need the alignment */
    volatile __attribute__((aligned(16))) char probe[16];
    if (((uintptr_t)probe) % 16 != 0) return 17;
    printf("ok %.1Lf\n", x);
    return 0;
}
