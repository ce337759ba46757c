#!/usr/bin/env bash
# Does genred's serve-only install work on linux/aarch64 (Raspberry Pi OS 64-bit = Debian
# bookworm arm64)? Builds a Debian arm64 root with debootstrap, runs it under
# qemu-user-static (binfmt_misc), installs genred's wheel with its base dependencies from the
# registries, classifies a clip and runs the daemon on the demo (DAEMON_SECONDS, 300). Not CI:
# minutes of emulated CPU, needs root and the Debian and PyPI registries.
#   tools/arm64_check.sh [CLIP] [WORKDIR]     (default clip: the demo's first, workdir /tmp)
set -euo pipefail
root_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
clip="${1:-$(ls "$root_dir"/daemon/demo/*.ogg | head -n 1)}"
work="${2:-/tmp}/genred-arm64"
chroot_dir="$work/root"
log() { echo "[arm64-check $(date +%T)] $*" >&2; }

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
command -v update-binfmts >/dev/null || need+=(binfmt-support)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
update-binfmts --enable qemu-aarch64 2>/dev/null || true
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || { log "binfmt_misc has no qemu-aarch64"; exit 1; }

if [ ! -x "$chroot_dir/usr/bin/python3" ]; then
    log "debootstrap bookworm arm64 (python3, ffmpeg, libportaudio2) into $chroot_dir"
    mkdir -p "$work"
    debootstrap --arch=arm64 --variant=minbase --foreign \
        --include=python3,python3-venv,ca-certificates,ffmpeg,libportaudio2 \
        bookworm "$chroot_dir" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1
    cp /usr/bin/qemu-aarch64-static "$chroot_dir/usr/bin/"
    chroot "$chroot_dir" /debootstrap/debootstrap --second-stage >>"$work/debootstrap.log" 2>&1
fi
cp /etc/resolv.conf "$chroot_dir/etc/resolv.conf"
# the host's CA bundle: pip in the root trusts what the host trusts (TLS-inspecting proxies)
cp /etc/ssl/certs/ca-certificates.crt "$chroot_dir/etc/ssl/certs/host-ca-certificates.crt"

log "building genred's wheel"
[ -x "$work/buildenv/bin/pip" ] || python3 -m venv "$work/buildenv"
rm -rf "$work/src" "$work/wheel" && mkdir -p "$work/wheel"
cp -r "$root_dir" "$work/src"  # pip builds in the tree: keep the checkout clean
rm -rf "$work/src/.venv" "$work/src/.git"
"$work/buildenv/bin/pip" wheel -q --no-deps -w "$work/wheel" "$work/src" >"$work/wheel.log" 2>&1
rm -rf "$work/src"
mkdir -p "$chroot_dir/opt/src"
wheel="$(basename "$(ls "$work"/wheel/genred-*.whl)")"
cp "$work/wheel/$wheel" "$clip" "$chroot_dir/opt/src/"
in_root() { chroot "$chroot_dir" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root \
    PIP_CERT=/etc/ssl/certs/host-ca-certificates.crt "$@"; }

for fs in proc sys dev; do  # psutil (dask) reads /proc; sounddevice wants /dev
    mountpoint -q "$chroot_dir/$fs" || mount --bind "/$fs" "$chroot_dir/$fs"
done
# qemu-user (7.2, bookworm) passes the host's x86 /proc/cpuinfo through, and LiteRT's CPU
# probe crashes on it (SIGSEGV in Interpreter()); a real aarch64 machine has its own. An
# ARM one (Cortex-A76, as a Raspberry Pi 5) stands in for it.
printf 'processor\t: %s\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n' 0 1 2 3 \
    >"$work/cpuinfo"
mount --bind "$work/cpuinfo" "$chroot_dir/proc/cpuinfo"
trap 'umount "$chroot_dir/proc/cpuinfo" 2>/dev/null || true
      for fs in dev sys proc; do umount -l "$chroot_dir/$fs" 2>/dev/null || true; done' EXIT

log "uname -m in the root: $(in_root uname -m)"
digest="$(python3 -c 'import hashlib, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])  # the contents, not the zip (its timestamps vary)
print(hashlib.sha256(b"".join(z.read(n) for n in sorted(z.namelist()))).hexdigest()[:16])' \
    "$work/wheel/$wheel")"
if [ "$(cat "$chroot_dir/opt/genred/.wheel" 2>/dev/null)" != "$digest" ]; then
    started=$(date +%s)
    in_root rm -rf /opt/genred
    in_root python3 -m venv /opt/genred
    in_root /opt/genred/bin/pip install -q --disable-pip-version-check "/opt/src/$wheel" \
        >"$work/pip.log" 2>&1 || { tail -20 "$work/pip.log"; log "pip install failed"; exit 1; }
    echo "$digest" >"$chroot_dir/opt/genred/.wheel"
    log "base install: $(($(date +%s) - started)) s, $(in_root du -sh /opt/genred | cut -f1)"
fi
in_root /opt/genred/bin/python -c \
    "import importlib.util as u; print('tensorflow importable:', bool(u.find_spec('tensorflow')))"

started=$(date +%s)
in_root /opt/genred/bin/genred classify "/opt/src/$(basename "$clip")" --workers 1
log "classify (emulated): $(($(date +%s) - started)) s"

seconds="${DAEMON_SECONDS:-300}"  # emulated: the first window takes minutes of CPU
log "daemon on the demo for $seconds s"
in_root timeout -k 120 -s TERM "$seconds" /opt/genred/bin/genred run --source demo: --port 18765 \
    2>"$work/daemon.log" || [ $? -eq 124 ]
grep -c "" "$work/daemon.log" >/dev/null && tail -3 "$work/daemon.log" >&2
log "done; the root stays in $chroot_dir (rm -rf it when finished)"
