/* Linux kernel headers are on occlum-gcc's include path, after musl's own. */
#include <asm/unistd.h>
#include <linux/futex.h>
#include <linux/limits.h>
#include <stdio.h>

int main(void) {
    /* values fixed by the kernel ABI: a wrong header would give other numbers */
    int ok = FUTEX_WAIT == 0 && FUTEX_WAKE == 1 && PATH_MAX == 4096 && __NR_futex == 202;
    printf("FUTEX_WAIT=%d FUTEX_WAKE=%d PATH_MAX=%d __NR_futex=%d\n",
           FUTEX_WAIT, FUTEX_WAKE, PATH_MAX, __NR_futex);
    return ok ? 0 : 1;
}
