# The busybox probe: four busybox applets that read the clock or randomness, one file each.
# usage: sh probe_busybox.sh [OUTPUT-FOLDER]   (default /out)
#
# Writes busybox-shuf.txt, busybox-awk-srand.txt, busybox-mktemp.txt and busybox-date.txt
# and prints nothing, so `docklock verify` names a differing applet as
# outputs/busybox-<applet>.txt. Every applet is called as `busybox APPLET`: the same
# script runs the image's own busybox, Debian's dynamic one (libfaketime reaches its
# clock) in the Debian image, the static one (nothing reaches it) in busybox-static.
# The interpreter is the job's choice: dash in the Debian image, busybox sh in the other.
set -eu
out=${1:-/out}

# shuf seeds its generator from the microsecond clock.
busybox seq 1 20 | busybox shuf > "$out/busybox-shuf.txt"

# awk's srand() without an argument seeds from time(); rand() then follows the seed.
busybox awk 'BEGIN { srand(); print rand(); print rand() }' > "$out/busybox-awk-srand.txt"

# mktemp's name comes from libc's mkstemp: glibc mixes the clock read inside libc (no
# preload reaches it) when getrandom is denied, so the name differs even when dynamic.
name=$(busybox mktemp)
busybox rm -f "$name"
echo "$name" > "$out/busybox-mktemp.txt"

busybox date -u '+%Y-%m-%d %H:%M:%S %s' > "$out/busybox-date.txt"
