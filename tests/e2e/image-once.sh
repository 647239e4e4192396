#!/usr/bin/env bash
# Images (issue 6): pulls from a real registry. Starts Debian's docker-registry on loopback,
# builds two busybox images FROM scratch with buildah and pushes them (one with an OCI
# manifest, one as Docker v2 schema 2), writes `docker save` and OCI archives of the first,
# then runs baton-image's registry tests against them (pull, rootfs contents, cached repull,
# by-digest pull, concurrent pulls, missing image / down registry / Never errors, remove and
# gc, archive import, the CLI). Needs buildah, busybox-static, docker-registry and curl.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/registry.sh

fail() {
  echo "FAIL [image-once]: $*" >&2
  if [ -n "$REGISTRY_DIR" ] && [ -f "$REGISTRY_DIR/registry.log" ]; then
    echo "--- registry log tail:" >&2
    tail -n 20 "$REGISTRY_DIR/registry.log" >&2
  fi
  exit 1
}
trap stop_registry EXIT

for tool in buildah docker-registry curl; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install buildah docker-registry busybox-static curl)"
done
[ -x /bin/busybox ] || fail "/bin/busybox is missing (apt-get install busybox-static)"

start_registry || fail "registry did not start"
build_hello_image hello:v1 "hello from baton" || fail "building hello:v1"
build_hello_image hello-v2s2:v1 "hello v2s2" --format v2s2 || fail "building hello-v2s2:v1"
save_image_archive hello:v1 "$REGISTRY_DIR/hello-docker.tar" docker-archive || fail "docker archive"
save_image_archive hello:v1 "$REGISTRY_DIR/hello-oci.tar" oci-archive || fail "OCI archive"

BATON_REGISTRY="$REGISTRY" \
  BATON_IMAGE_DOCKER_ARCHIVE="$REGISTRY_DIR/hello-docker.tar" \
  BATON_IMAGE_OCI_ARCHIVE="$REGISTRY_DIR/hello-oci.tar" \
  cargo test --release --locked -q -p baton-image --test registry || fail "baton-image registry tests"
echo "image-once: ok"
