#!/usr/bin/env bash
# Tests the container image for real, without a container runtime (crun cannot set rlimits on
# these machines): builds it with podman (vfs storage, chroot isolation) in a scratch storage,
# exports its filesystem (podman create + podman export) and, in a chroot of that root as the
# image's user, runs `sbm --version`, `sbm migrate` on SQLite under /data and on PostgreSQL by
# host name (localhost, through the image's /etc/hosts), and `sbm serve` and `sbm worker`,
# reached from the host over loopback. Checks that the image holds exactly the listed files (no
# shell, no package manager). First checks deploy/kubernetes.yaml (scripts/check-kubernetes.sh).
# Installs podman if it is missing; removes everything it made.
#
# PostgreSQL: SBM_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres), a
# role that may create databases; a scratch database is created and dropped.
set -euo pipefail
cd "$(dirname "$0")/.."

admin_url="${SBM_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
work=$(mktemp -d /tmp/sbm-image-test.XXXXXX)
image="localhost/sbm-image-test:$$"
container="sbm-image-test-$$"
database="sbm_image_test_$$"
storage_args="--storage-driver vfs --root $work/storage --runroot $work/run"
root="$work/root"
pids=()

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
    # shellcheck disable=SC2086
    podman $storage_args rm --force "$container" >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    podman $storage_args rmi --force "$image" >/dev/null 2>&1 || true
    psql "$admin_url" -qc "drop database if exists $database" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

if ! command -v podman >/dev/null 2>&1; then
    echo "== installing podman"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman >/dev/null
fi

scripts/check-kubernetes.sh

echo "== build"
SBM_IMAGE="$image" SBM_IMAGE_BUILDER=podman SBM_IMAGE_STORAGE_ARGS="$storage_args" \
    scripts/build-image.sh

echo "== export"
# shellcheck disable=SC2086
podman $storage_args create --name "$container" "$image" >/dev/null
# shellcheck disable=SC2086
podman $storage_args export -o "$work/rootfs.tar" "$container"
mkdir "$root"
tar -xpf "$work/rootfs.tar" -C "$root"
# shellcheck disable=SC2086
config=$(podman $storage_args image inspect --format '{{json .Config}}' "$image")
# shellcheck disable=SC2086
healthcheck=$(podman $storage_args image inspect --format '{{json .HealthCheck}}' "$image")

echo "== image configuration"
python3 - "$config" "$healthcheck" <<'EOF'
import json, sys
config, health = json.loads(sys.argv[1]), json.loads(sys.argv[2])
env = dict(item.split("=", 1) for item in config.get("Env", []))
checks = {
    "user is 10001:10001": config.get("User") == "10001:10001",
    "entrypoint is /sbm": config.get("Entrypoint") == ["/sbm"],
    "cmd is serve": config.get("Cmd") == ["serve"],
    "port 8000 exposed": "8000/tcp" in (config.get("ExposedPorts") or {}),
    "/data is a volume": "/data" in (config.get("Volumes") or {}),
    "SQLite under /data": env.get("DATABASE_URL") == "sqlite:///data/sbm.db",
    "media under /data": env.get("SBM_MEDIA_ROOT") == "/data/media",
    "binds every address": env.get("SBM_BIND") == "0.0.0.0:8000",
    "healthcheck runs sbm healthcheck": (health or {}).get("Test") == ["CMD", "/sbm", "healthcheck"],
}
for name, ok in checks.items():
    print(("ok   " if ok else "FAIL ") + name)
if not all(checks.values()):
    sys.exit(f"image configuration: {json.dumps(config)} healthcheck: {json.dumps(health)}")
EOF
user=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["User"])' "$config")
mapfile -t image_env < <(python3 -c 'import json,sys; print("\n".join(json.loads(sys.argv[1])["Env"]))' "$config")

echo "== image contents"
# Everything the image holds, with owner and mode.
expected="data 10001:10001 d755
etc 0:0 d755
etc/group 0:0 f644
etc/hosts 0:0 f644
etc/nsswitch.conf 0:0 f644
etc/passwd 0:0 f644
etc/ssl 0:0 d755
etc/ssl/certs 0:0 d755
etc/ssl/certs/ca-certificates.crt 0:0 f644
sbm 0:0 f755"
actual=$(cd "$root" && find . -mindepth 1 -printf '%P %U:%G %y%m\n' | sort)
if [[ "$actual" != "$expected" ]]; then
    diff <(echo "$expected") <(echo "$actual") >&2 || true
    fail "the image holds other files than listed (< expected, > found)"
fi
for program in bin/sh usr/bin/env bin/busybox usr/bin/apt usr/bin/dpkg sbin/apk; do
    if [[ -e "$root/$program" ]]; then fail "the image has /$program"; fi
done
if readelf -l "$root/sbm" | grep -q INTERP || readelf -d "$root/sbm" | grep -q NEEDED; then
    fail "/sbm is not statically linked"
fi
echo "ok   exactly the listed files; no shell, no package manager; /sbm is static"

# Sets `command` to run the image's /sbm in the exported root, as the image's user, with the
# image's environment plus the leading VAR=value arguments; the rest are sbm's arguments.
image_command() {
    local settings=()
    while [[ $# -gt 0 && "$1" == *=* ]]; do
        settings+=("$1")
        shift
    done
    # PostgreSQL needs a SECRET_KEY (docs/security.md); one for every run of the test.
    command=(env -i "${image_env[@]}" SECRET_KEY=image-test-secret-key "${settings[@]}" chroot --userspec="$user" "$root" /sbm "$@")
}

in_image() {
    image_command "$@"
    "${command[@]}"
}

# Starts `sbm …` in the image in the background (env and chroot exec, so the pid is sbm's);
# waits for `ready` in its log.
start_in_image() {
    local log=$1 ready=$2
    shift 2
    image_command "$@"
    "${command[@]}" 2>"$log" &
    pids+=($!)
    local waited=0
    until grep -q "$ready" "$log"; do
        kill -0 "${pids[-1]}" 2>/dev/null || { cat "$log" >&2; fail "sbm $* exited early"; }
        ((waited++ < 300)) || { cat "$log" >&2; fail "sbm $* did not get ready"; }
        sleep 0.1
    done
}

# Sends SIGTERM to the last started process and requires a clean exit with `stopped` logged.
stop_last() {
    local log=$1 stopped=$2 pid=${pids[-1]}
    local status=0
    kill -TERM "$pid"
    wait "$pid" || status=$?
    ((status == 0)) || { cat "$log" >&2; fail "exit status $status after SIGTERM"; }
    unset 'pids[-1]'
    grep -q "$stopped" "$log" || { cat "$log" >&2; fail "no '$stopped' in the log"; }
}

echo "== sbm --version"
version=$(in_image --version)
[[ "$version" == "sbm $(cargo metadata --no-deps --format-version 1 |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["packages"][0]["version"])')" ]] ||
    fail "version: $version"
echo "ok   $version"

echo "== sbm migrate on SQLite under /data"
in_image migrate
[[ -f "$root/data/sbm.db" ]] || fail "no /data/sbm.db"
[[ "$(stat -c %u "$root/data/sbm.db")" == "${user%%:*}" ]] || fail "/data/sbm.db not the user's"
echo "ok   /data/sbm.db created by uid ${user%%:*}"

echo "== sbm migrate on PostgreSQL by host name"
psql "$admin_url" -qc "create database $database" >/dev/null
pg_url=$(python3 - "$admin_url" "$database" <<'EOF'
import sys, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])
auth = url.netloc.rpartition("@")[0]
netloc = (auth + "@" if auth else "") + "localhost" + (f":{url.port}" if url.port else "")
print(urllib.parse.urlunsplit((url.scheme, netloc, "/" + sys.argv[2], url.query, "")))
EOF
)
in_image DATABASE_URL="$pg_url" migrate
tables=$(psql "${admin_url%/*}/$database" -tAc \
    "select count(*) from information_schema.tables where table_schema = 'public'")
((tables > 5)) || fail "PostgreSQL has $tables tables after migrate"
echo "ok   $tables tables in $database, reached as localhost"

echo "== sbm serve, from the host over loopback"
token=$(in_image token create --email image-test@example.org --admin)
# Port 0 rather than the image's 8000, which may be taken on a shared machine.
start_in_image "$work/serve.log" "sbm listening" SBM_BIND=127.0.0.1:0 serve
address=$(grep -o 'address=[^ ]*' "$work/serve.log" | head -1 | cut -d= -f2)
health=$(curl -fsS "http://$address/healthz")
[[ "$health" == *'"up":true'* ]] || fail "/healthz: $health"
echo "ok   /healthz: $health"
status=$(curl -s -o /dev/null -w '%{http_code}' "http://$address/api/v1/schedule/")
[[ "$status" == 401 ]] || fail "unauthenticated call answered $status"
schedules=$(curl -fsS -H "Authorization: Token $token" "http://$address/api/v1/schedule/")
[[ "$schedules" == *'"results":'* ]] || fail "authenticated call: $schedules"
echo "ok   GET /api/v1/schedule/ with the token: $schedules; without: 401"
in_image SBM_BIND="$address" healthcheck >/dev/null || fail "sbm healthcheck failed"
echo "ok   sbm healthcheck (the image's HEALTHCHECK) in the image"
stop_last "$work/serve.log" "shutting down"
echo "ok   serve stopped cleanly on SIGTERM"

echo "== sbm worker on PostgreSQL"
start_in_image "$work/worker.log" "worker started" DATABASE_URL="$pg_url" worker
stop_last "$work/worker.log" "worker stopped"
echo "ok   worker started and stopped cleanly on SIGTERM"

echo "== image test passed"
