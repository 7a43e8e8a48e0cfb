/*
 * docklock-launch: the init of a deterministic job container (Podman's --init-path).
 *
 * Podman runs it as `/run/podman-init -- ENTRYPOINT... CMD...`. It
 *   1. turns address-space randomisation off for itself and everything it executes
 *      (personality(ADDR_NO_RANDOMIZE); the cage's seccomp profile allows exactly this
 *      value), so stack, heap, mmap and vDSO addresses repeat from run to run;
 *   2. with DOCKLOCK_FAKETIME=auto, drops LD_PRELOAD and FAKETIME from the environment
 *      when the image has no glibc loader: libfaketime is a glibc library, musl's
 *      loader refuses to start a program that preloads it, and static programs ignore
 *      LD_PRELOAD anyway;
 *   3. executes the command like execvp: a name without '/' is looked up in PATH.
 * Exit codes when it cannot: 125 (ASLR could not be turned off), 126 (found but not
 * executable), 127 (not found). It never returns to its caller otherwise.
 *
 * Freestanding (no libc) so one static x86-64 binary runs in every image. Build:
 * tools/build-launcher (the bytes are checked in next to this file, and a test
 * rebuilds them).
 */

typedef unsigned long size_t;

#define SYS_write 1
#define SYS_access 21
#define SYS_execve 59
#define SYS_exit 60
#define SYS_personality 135

#define ADDR_NO_RANDOMIZE 0x0040000
#define ENOENT 2
#define EACCES 13
#define ENOTDIR 20
#define PATH_MAX 4096

static long syscall3(long n, long a, long b, long c) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return ret;
}

static size_t length(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

static int starts_with(const char *s, const char *prefix) {
    while (*prefix) {
        if (*s++ != *prefix++) return 0;
    }
    return 1;
}

static void say(const char *a, const char *b, const char *c) {
    syscall3(SYS_write, 2, (long)a, (long)length(a));
    syscall3(SYS_write, 2, (long)b, (long)length(b));
    syscall3(SYS_write, 2, (long)c, (long)length(c));
}

static __attribute__((noreturn)) void leave(int code) {
    for (;;) syscall3(SYS_exit, code, 0, 0);
}

static const char *env_value(char **envp, const char *prefix) {
    for (; *envp; envp++) {
        if (starts_with(*envp, prefix)) return *envp + length(prefix);
    }
    return 0;
}

/* Remove every entry starting with `prefix` (envp is ours to rewrite in place). */
static void env_drop(char **envp, const char *prefix) {
    char **out = envp;
    for (; *envp; envp++) {
        if (!starts_with(*envp, prefix)) *out++ = *envp;
    }
    *out = 0;
}

static __attribute__((noreturn, used)) void launch(long *sp) {
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    char buf[PATH_MAX];
    const char *mode;
    const char *path;
    const char *name;
    long err;
    int denied = 0;

    argv++; /* skip our own name */
    if (*argv && argv[0][0] == '-' && argv[0][1] == '-' && argv[0][2] == 0) argv++;
    if (!*argv) {
        say("docklock-launch: ", "no command to run", "\n");
        leave(127);
    }
    err = syscall3(SYS_personality, ADDR_NO_RANDOMIZE, 0, 0);
    if (err < 0) {
        say("docklock-launch: ", "personality(ADDR_NO_RANDOMIZE) was refused",
            " (the cage's seccomp profile must allow it)\n");
        leave(125);
    }
    mode = env_value(envp, "DOCKLOCK_FAKETIME=");
    if (mode && mode[0] == 'a' && mode[1] == 'u' && mode[2] == 't' && mode[3] == 'o'
        && mode[4] == 0
        && syscall3(SYS_access, (long)"/lib64/ld-linux-x86-64.so.2", 0, 0) != 0) {
        env_drop(envp, "LD_PRELOAD=");
        env_drop(envp, "FAKETIME=");
    }
    name = argv[0];
    for (const char *p = name; *p; p++) {
        if (*p == '/') {
            err = syscall3(SYS_execve, (long)name, (long)argv, (long)envp);
            say("docklock-launch: cannot execute ", name,
                err == -ENOENT ? ": not found\n" : ": permission denied or not a program\n");
            leave(err == -ENOENT || err == -ENOTDIR ? 127 : 126);
        }
    }
    path = env_value(envp, "PATH=");
    if (!path) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    size_t name_len = length(name);
    while (1) {
        const char *end = path;
        while (*end && *end != ':') end++;
        size_t dir_len = (size_t)(end - path);
        if (dir_len == 0) {
            buf[0] = '.';
            dir_len = 1;
        } else if (dir_len + name_len + 2 <= PATH_MAX) {
            for (size_t i = 0; i < dir_len; i++) buf[i] = path[i];
        } else {
            dir_len = 0; /* too long: skipped below */
        }
        if (dir_len && dir_len + name_len + 2 <= PATH_MAX) {
            buf[dir_len] = '/';
            for (size_t i = 0; i <= name_len; i++) buf[dir_len + 1 + i] = name[i];
            err = syscall3(SYS_execve, (long)buf, (long)argv, (long)envp);
            if (err == -EACCES) denied = 1;
        }
        if (!*end) break;
        path = end + 1;
    }
    say("docklock-launch: ", name, denied ? ": permission denied\n" : ": not found in PATH\n");
    leave(denied ? 126 : 127);
}

/* The kernel enters here with the stack pointer at argc. */
__asm__(".text\n.global _start\n_start:\n  mov %rsp, %rdi\n  and $-16, %rsp\n"
        "  call launch\n");
