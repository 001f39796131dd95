#!/usr/bin/env bash
# Prepare both sandbox backends on a Debian/Ubuntu host (root): install docker.io, bubblewrap
# and debootstrap, start dockerd when none answers, build the local base image
# (grader-base:bookworm, from a debootstrap rootfs: python3, numpy, Pillow) and the sampler
# image from ./Dockerfile. Idempotent: a second run only checks. No registry is needed.
#
# Environment:
#   GRADER_SANDBOX_CACHE   cache folder (default ~/.cache/grader/sandbox): the rootfs tarball,
#                          its unpacked tree (the bubblewrap backend's root), and the log and
#                          pid (dockerd.pid) of a dockerd this script started
#   GRADER_BASE_IMAGE      base image tag (default grader-base:bookworm)
#   GRADER_SAMPLER_IMAGE   sampler image tag (default grader-sampler:latest)
#   GRADER_DEBIAN_MIRROR   Debian mirror (default: the first one in /etc/apt/sources*)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${GRADER_SANDBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/grader/sandbox}"
BASE_IMAGE="${GRADER_BASE_IMAGE:-grader-base:bookworm}"
SAMPLER_IMAGE="${GRADER_SAMPLER_IMAGE:-grader-sampler:latest}"
SUITE=bookworm
PACKAGES=python3,python3-numpy,python3-pil
ROOTFS_TAR="$CACHE/rootfs-$SUITE.tar.gz"
ROOTFS_DIR="$CACHE/rootfs-$SUITE"

log() { printf '[sandbox-setup] %s\n' "$*" >&2; }

mkdir -p "$CACHE"

# ---------------------------------------------------------------- packages
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ---------------------------------------------------------------- engine
if ! docker info >/dev/null 2>&1; then
    log "starting dockerd (no iptables, no bridge: sandboxes use network_mode=none)"
    nohup dockerd --iptables=false --bridge=none >"$CACHE/dockerd.log" 2>&1 &
    echo $! >"$CACHE/dockerd.pid"  # who started it can stop it: kill "$(cat "$CACHE/dockerd.pid")"
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { log "dockerd did not answer in 60 s; see $CACHE/dockerd.log"; exit 1; }
fi

# ---------------------------------------------------------------- base rootfs
debian_mirror() {
    local uri
    uri="$(grep -hE '^\s*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '{print $2}' | grep -v security | head -n1 || true)"
    if [[ -z "$uri" ]]; then
        uri="$(grep -hE '^\s*deb\s' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | grep -v security | awk '{print $2}' | grep -i debian | head -n1 || true)"
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

if [[ ! -s "$ROOTFS_TAR" ]]; then
    mirror="${GRADER_DEBIAN_MIRROR:-$(debian_mirror)}"
    log "debootstrap $SUITE (minbase + $PACKAGES) from $mirror"
    work="$(mktemp -d "$CACHE/debootstrap.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/rootfs" "$mirror" \
        >"$CACHE/debootstrap.log" 2>&1 || { log "debootstrap failed; see $CACHE/debootstrap.log"; exit 1; }
    # Only what a sampler needs at run time: no package caches, lists, docs or man pages.
    rm -rf "$work/rootfs"/var/cache/apt/archives/*.deb "$work/rootfs"/var/lib/apt/lists/* \
        "$work/rootfs"/usr/share/doc/* "$work/rootfs"/usr/share/man/* "$work/rootfs"/usr/share/info/*
    tar --numeric-owner -C "$work/rootfs" -czf "$ROOTFS_TAR.part" .
    mv "$ROOTFS_TAR.part" "$ROOTFS_TAR"
    rm -rf "$work"
    trap - EXIT
fi

# The unpacked tree is the bubblewrap backend's root (GRADER_SANDBOX_ROOTFS); /dev is left out
# because bwrap makes its own.
stamp="$(stat -c '%s %Y' "$ROOTFS_TAR")"
if [[ ! -x "$ROOTFS_DIR/usr/bin/python3" || "$(cat "$ROOTFS_DIR.stamp" 2>/dev/null)" != "$stamp" ]]; then
    log "unpacking the rootfs for bubblewrap into $ROOTFS_DIR"
    rm -rf "$ROOTFS_DIR.part" "$ROOTFS_DIR"
    mkdir -p "$ROOTFS_DIR.part"
    tar --numeric-owner -C "$ROOTFS_DIR.part" --exclude=./dev -xzf "$ROOTFS_TAR"
    mv "$ROOTFS_DIR.part" "$ROOTFS_DIR"
    echo "$stamp" >"$ROOTFS_DIR.stamp"
fi

# ---------------------------------------------------------------- images
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "importing $BASE_IMAGE"
    docker import "$ROOTFS_TAR" "$BASE_IMAGE" >/dev/null
fi

# The Dockerfile copies nothing, so it is sent without a build context. The classic builder
# works with every engine version (BuildKit would need the buildx plugin).
log "building $SAMPLER_IMAGE from Dockerfile (FROM $BASE_IMAGE)"
DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$SAMPLER_IMAGE" - \
    <"$ROOT/Dockerfile" >"$CACHE/build.log" 2>&1 || { cat "$CACHE/build.log" >&2; exit 1; }

log "ready: docker image $SAMPLER_IMAGE, bubblewrap root $ROOTFS_DIR"
echo "GRADER_SANDBOX_ROOTFS=$ROOTFS_DIR"
