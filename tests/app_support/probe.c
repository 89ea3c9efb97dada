/* Escape probe for kiln app tests: runs inside the sandbox as the app.
 * Each mode tries one escape and prints "ok" if it worked, or
 * "refused ERRNO-NAME" if the kernel (or the seccomp filter) said no.
 * Built statically by the tests (gcc -static). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <arpa/inet.h>
#include <unistd.h>

static int report(int rc) {
    if (rc >= 0) { printf("ok\n"); return 0; }
    printf("refused %s\n", strerrorname_np(errno) ? strerrorname_np(errno) : "?");
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *m = argv[1];
    if (!strcmp(m, "tiocsti")) {
        char c = 'x';
        int fd = argc > 2 ? open(argv[2], O_RDWR) : 0;
        return report(ioctl(fd, TIOCSTI, &c));
    }
    if (!strcmp(m, "tiocsti-hibits")) {
        char c = 'x';
        return report(syscall(SYS_ioctl, 0, 0x100000000UL | TIOCSTI, &c));
    }
    if (!strcmp(m, "traceme")) return report(ptrace(PTRACE_TRACEME, 0, 0, 0));
    if (!strcmp(m, "attach")) return report(ptrace(PTRACE_ATTACH, atoi(argv[2]), 0, 0));
    if (!strcmp(m, "userns")) return report(unshare(CLONE_NEWUSER));
    if (!strcmp(m, "clone-userns")) {
        long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
        if (r == 0) _exit(0);
        return report(r);
    }
    if (!strcmp(m, "mount")) return report(syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, 0));
    if (!strcmp(m, "socket-packet")) return report(socket(AF_PACKET, SOCK_RAW, 0));
    if (!strcmp(m, "personality")) return report(syscall(SYS_personality, 0x0040000));
    if (!strcmp(m, "connect")) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0) return report(s);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        return report(connect(s, (struct sockaddr *)&a, sizeof a));
    }
    if (!strcmp(m, "write")) {
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        return report(fd);
    }
    if (!strcmp(m, "read")) {
        int fd = open(argv[2], O_RDONLY);
        if (fd >= 0) { char b[64]; ssize_t n = read(fd, b, sizeof b); if (n < 0) return report(-1); }
        return report(fd);
    }
    return 2;
}
