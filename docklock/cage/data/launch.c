/*
 * docklock-launch: the init of a deterministic job container (Podman's --init-path).
 *
 * Podman runs it as `/run/podman-init -- ENTRYPOINT... CMD...`. It
 *   1. turns address-space randomisation off for itself and everything it executes
 *      (personality(ADDR_NO_RANDOMIZE); the cage's seccomp profile allows exactly this
 *      value), so stack, heap, mmap and vDSO addresses repeat from run to run;
 *   2. with DOCKLOCK_FAKETIME=auto, drops libfaketime (its element of LD_PRELOAD, and
 *      FAKETIME) unless the image can load it: glibc's loader must exist (libfaketime
 *      is a glibc library, musl's loader refuses to start a program that preloads it,
 *      and static programs ignore LD_PRELOAD anyway) and, when the cage names one in
 *      DOCKLOCK_FAKETIME_GLIBC, the image's libc.so.6 must define the newest glibc
 *      version libfaketime was linked against (else every dynamic program dies with
 *      "version `GLIBC_2.34' not found"). A libc of a later release still defines that
 *      version's name, so the newest one the preload needs from libc.so.6 is the test
 *      (docklock.cage.host.needed_glibc reads it). The job's own LD_PRELOAD elements
 *      are kept.
 *      DOCKLOCK_FAKETIME=always (or any other value) leaves the environment alone;
 *   3. executes the command like execvp: a name without '/' is looked up in PATH
 *      (a file the kernel refuses with ENOEXEC is reported, not run through /bin/sh).
 * Exit codes when it cannot: 125 (ASLR could not be turned off), 126 (found but not
 * executable), 127 (not found). It never returns to its caller otherwise.
 *
 * Freestanding (no libc) so one static x86-64 binary runs in every image. Build:
 * tools/build-launcher (the bytes are checked in next to this file, and a test
 * rebuilds them).
 */

typedef unsigned long size_t;

#define SYS_read 0
#define SYS_write 1
#define SYS_open 2
#define SYS_close 3
#define SYS_access 21
#define SYS_execve 59
#define SYS_exit 60
#define SYS_personality 135

#define ADDR_NO_RANDOMIZE 0x0040000
#define O_RDONLY 0
#define O_CLOEXEC 02000000
#define ENOENT 2
#define EINTR 4
#define ENOEXEC 8
#define EACCES 13
#define ENOTDIR 20
#define ENODEV 19
#define ESTALE 116
#define ETIMEDOUT 110
#define PATH_MAX 4096

/* Where the cage binds libfaketime (docklock.cage.podman_args.PRELOAD_TARGET). */
#define FAKETIME_PRELOAD "/.docklock/libfaketime.so.1"
/* Longest glibc version name looked for ("GLIBC_2.34" is 10): longer never matches. */
#define VERSION_MAX 64
#define SCAN_CHUNK 32768
/* Room for the rewritten LD_PRELOAD entries (each no longer than the original). */
#define PRELOAD_ROOM 8192

/* Where glibc images keep libc.so.6 (Debian/Ubuntu multiarch, then Fedora/Arch-like). */
static const char *const LIBC_PATHS[] = {
    "/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/lib64/libc.so.6", "/usr/lib64/libc.so.6", "/lib/libc.so.6", "/usr/lib/libc.so.6",
};

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

static int is_preload_separator(char c) {
    return c == ' ' || c == ':'; /* what glibc's loader splits LD_PRELOAD at */
}

/*
 * Rewrite every LD_PRELOAD entry without its FAKETIME_PRELOAD elements, keeping the
 * job's own elements (each after the separator that preceded it); an entry left empty
 * is removed. The rewritten entries go to `preload_room` (PRELOAD_ROOM bytes in the
 * caller's frame, alive until execve; not static: writable static data would make the
 * build's single -Wl,-n segment writable and executable). An entry that does not fit
 * is removed whole (with a note on stderr): keeping libfaketime would kill the job.
 */
static void preload_drop_faketime(char **envp, char *preload_room) {
    static const char prefix[] = "LD_PRELOAD=";
    size_t used = 0;
    char **out = envp;
    for (; *envp; envp++) {
        char *entry = *envp;
        if (!starts_with(entry, prefix)) {
            *out++ = entry;
            continue;
        }
        const char *value = entry + sizeof prefix - 1;
        size_t need = length(entry) + 1;
        if (need > PRELOAD_ROOM - used) {
            say("docklock-launch: ", "LD_PRELOAD is too long to edit", ": removed whole\n");
            continue;
        }
        char *text = preload_room + used;
        size_t n = sizeof prefix - 1, start = n;
        for (size_t i = 0; i < n; i++) text[i] = prefix[i];
        const char *p = value;
        while (*p) {
            char sep = 0;
            while (is_preload_separator(*p)) sep = *p++;
            const char *word = p;
            while (*p && !is_preload_separator(*p)) p++;
            size_t word_len = (size_t)(p - word);
            if (word_len == 0) break;
            if (word_len == sizeof FAKETIME_PRELOAD - 1 && starts_with(word, FAKETIME_PRELOAD))
                continue;
            if (n > start) text[n++] = sep;
            for (size_t i = 0; i < word_len; i++) text[n++] = word[i];
        }
        if (n == start) continue; /* nothing of the job's own: drop the variable */
        text[n++] = 0;
        used += n;
        *out++ = text;
    }
    *out = 0;
}

/* Does the file at `path` contain needle[0..len) (which may hold NUL bytes)?
 * -1: no readable file there (missing, or a folder: the next candidate is tried). */
static int file_contains(const char *path, const char *needle, size_t len) {
    char scan_buf[SCAN_CHUNK + VERSION_MAX + 1];
    long fd = syscall3(SYS_open, (long)path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return -1;
    size_t have = 0; /* bytes in scan_buf: the tail kept from the last chunk, then new */
    int found = 0;
    int read_any = 0;
    while (!found) {
        long got = syscall3(SYS_read, fd, (long)(scan_buf + have), SCAN_CHUNK);
        if (got == -EINTR) continue;
        if (got < 0 && !read_any) {
            syscall3(SYS_close, fd, 0, 0);
            return -1;
        }
        if (got <= 0) break;
        read_any = 1;
        have += (size_t)got;
        for (size_t i = 0; i + len <= have && !found; i++) {
            size_t j = 0;
            while (j < len && scan_buf[i + j] == needle[j]) j++;
            found = j == len;
        }
        /* Keep the last len-1 bytes: a match straddling two chunks is found next time. */
        if (have >= len) {
            size_t keep = len - 1;
            for (size_t i = 0; i < keep; i++) scan_buf[i] = scan_buf[have - keep + i];
            have = keep;
        }
    }
    syscall3(SYS_close, fd, 0, 0);
    return found;
}

/* Does the image's libc.so.6 (the first that opens) define glibc version `version`? */
static int libc_defines(const char *version) {
    size_t len = length(version) + 1; /* "GLIBC_2.34\0": the NUL rules out GLIBC_2.345 */
    if (len > VERSION_MAX + 1) return 0;
    for (size_t k = 0; k < sizeof LIBC_PATHS / sizeof LIBC_PATHS[0]; k++) {
        int found = file_contains(LIBC_PATHS[k], version, len);
        if (found >= 0) return found;
    }
    return 0; /* no libc.so.6 where glibc keeps it: libfaketime cannot load */
}

/* DOCKLOCK_FAKETIME=auto: can this image's dynamic programs load libfaketime?
 * DOCKLOCK_FAKETIME_GLIBC unset or empty: the cage names no version to require. */
static int image_can_preload(char **envp) {
    if (syscall3(SYS_access, (long)"/lib64/ld-linux-x86-64.so.2", 0, 0) != 0) return 0;
    const char *version = env_value(envp, "DOCKLOCK_FAKETIME_GLIBC=");
    return !version || !*version || libc_defines(version);
}

static __attribute__((noreturn, used)) void launch(long *sp) {
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    char buf[PATH_MAX];
    char preload_room[PRELOAD_ROOM];
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
        && mode[4] == 0 && !image_can_preload(envp)) {
        preload_drop_faketime(envp, preload_room);
        env_drop(envp, "FAKETIME=");
    }
    name = argv[0];
    if (!*name) {
        say("docklock-launch: ", "\"\" (an empty command name)", ": not found\n");
        leave(127);
    }
    for (const char *p = name; *p; p++) {
        if (*p == '/') {
            err = syscall3(SYS_execve, (long)name, (long)argv, (long)envp);
            int missing = err == -ENOENT || err == -ENOTDIR;
            say("docklock-launch: cannot execute ", name,
                missing ? ": not found\n" : ": permission denied or not a program\n");
            leave(missing ? 127 : 126);
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
            /* execvp: these mean "not here, look further"; EACCES is remembered. */
            if (err == -EACCES) {
                denied = 1;
            } else if (err != -ENOENT && err != -ENOTDIR && err != -ESTALE && err != -ENODEV
                       && err != -ETIMEDOUT) {
                /* Found, and the kernel refused it (ENOEXEC: no #! line, ...). */
                say("docklock-launch: cannot execute ", buf,
                    ": permission denied or not a program\n");
                leave(126);
            }
        }
        if (!*end) break;
        path = end + 1;
    }
    if (denied) {
        say("docklock-launch: cannot execute ", name, ": permission denied or not a program\n");
        leave(126);
    }
    say("docklock-launch: ", name, ": not found in PATH\n");
    leave(127);
}

/* The kernel enters here with the stack pointer at argc. */
__asm__(".text\n.global _start\n_start:\n  mov %rsp, %rdi\n  and $-16, %rsp\n"
        "  call launch\n");
