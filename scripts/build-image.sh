#!/usr/bin/env bash
# Builds the container image from ./Containerfile: compiles sbm statically (cargo profile
# `image`), prepares the build context and runs podman (or buildah) on it, then prints the
# image's size. Needs podman or buildah (Debian packages), not a Docker engine.
#
#   scripts/build-image.sh                     # image localhost/sbm:latest
#   SBM_IMAGE=registry.example.org/sbm:1.2 scripts/build-image.sh
#
# Settings (environment):
#   SBM_IMAGE              tag to build (default localhost/sbm:latest)
#   SBM_IMAGE_BUILDER      podman or buildah (default: whichever is installed, podman first)
#   SBM_IMAGE_STORAGE_ARGS global options for the builder, e.g. "--storage-driver vfs --root DIR"
#   SBM_IMAGE_ISOLATION    build isolation (default chroot, which works without a container
#                          runtime; the Containerfile has no RUN step)
set -euo pipefail
cd "$(dirname "$0")/.."

image="${SBM_IMAGE:-localhost/sbm:latest}"
builder="${SBM_IMAGE_BUILDER:-}"
if [[ -z "$builder" ]]; then
    if command -v podman >/dev/null 2>&1; then
        builder=podman
    elif command -v buildah >/dev/null 2>&1; then
        builder=buildah
    else
        echo "neither podman nor buildah is installed (apt-get install -y podman)" >&2
        exit 1
    fi
fi
read -r -a storage_args <<<"${SBM_IMAGE_STORAGE_ARGS:-}"
target=x86_64-unknown-linux-gnu
target_dir="${CARGO_TARGET_DIR:-target}"
binary="$target_dir/$target/image/sbm"
ca_bundle=/etc/ssl/certs/ca-certificates.crt

echo "== static build (cargo --profile image --target $target, +crt-static)"
started=$(date +%s)
# With --target, RUSTFLAGS apply to the binary only, not to build scripts and proc macros.
# getrandom (behind uuid and rand) finds glibc's getrandom() with dlsym, which a static binary
# cannot do, and falls back to /dev/urandom: the image has no /dev of its own (a chroot of it
# has none at all), so it is told to make the getrandom system call itself.
RUSTFLAGS="-C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\"" \
    cargo build --locked --profile image --target "$target" --bin sbm
echo "static build took $(($(date +%s) - started)) s"

if [[ ! -f "$ca_bundle" ]]; then
    echo "$ca_bundle is missing (apt-get install -y ca-certificates)" >&2
    exit 1
fi

context="$target_dir/image-context"
rm -rf "$context"
mkdir -p "$context/rootfs/etc/ssl/certs" "$context/data"
cp "$binary" "$context/sbm"
cp "$ca_bundle" "$context/rootfs/etc/ssl/certs/ca-certificates.crt"
cp deploy/image/passwd deploy/image/group deploy/image/hosts deploy/image/nsswitch.conf \
    "$context/rootfs/etc/"
find "$context" -type d -exec chmod 0755 {} +
find "$context" -type f -exec chmod 0644 {} +
chmod 0755 "$context/sbm"

echo "== $builder build $image"
isolation="${SBM_IMAGE_ISOLATION:-chroot}"
# The docker format keeps HEALTHCHECK, which the OCI image format has no field for.
if [[ "$builder" == podman ]]; then
    podman "${storage_args[@]}" build --isolation "$isolation" --format docker \
        -t "$image" -f Containerfile "$context"
    bytes=$(podman "${storage_args[@]}" image inspect --format '{{.Size}}' "$image")
    size="$bytes bytes ($(awk -v s="$bytes" 'BEGIN { printf "%.1f", s / 1e6 }') MB)"
else
    buildah "${storage_args[@]}" build --isolation "$isolation" --format docker \
        -t "$image" -f Containerfile "$context"
    size=$(buildah "${storage_args[@]}" images --format '{{.Size}}' "$image")
fi
echo "image $image: $size, binary $(stat -c %s "$binary") bytes"
