#!/usr/bin/env bash
# A local image registry and test images for the e2e scenarios. Source this file (it is safe
# under `set -u`), then:
#
#   start_registry                     Debian's docker-registry on 127.0.0.1:$REGISTRY_PORT
#                                      (default 5000, or the next free port up to 5019 when
#                                      REGISTRY_PORT is unset), storage in a temp dir, no auth.
#   build_hello_image NAME:TAG TEXT [--format v2s2]
#                                      builds FROM scratch an image with a static busybox in
#                                      /bin (plus sh, cat, sleep, hostname, ... links) and
#                                      /www/index.html = TEXT, entrypoint
#                                      `/bin/busybox httpd -f -v -p 8080 -h /www`, and pushes
#                                      it to 127.0.0.1:$REGISTRY_PORT/NAME:TAG (OCI manifest,
#                                      or Docker v2 schema 2 with --format v2s2).
#   save_image_archive NAME:TAG FILE [docker-archive|oci-archive]
#                                      writes a built image as a `docker save` (default) or
#                                      OCI-layout tarball, tagged localhost/NAME:TAG.
#   stop_registry                      stops the registry and removes its data and buildah's.
#
# buildah keeps its storage under the same temp dir (--root/--runroot, vfs driver), so these
# functions neither need nor touch the machine's container storage. $REGISTRY (host:port) is
# set once the registry answers. Functions return non-zero and print why on failure.

if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
  echo "registry.sh is a library for e2e scenarios (source it); nothing to run on its own"
  exit 0
fi

REGISTRY_PORT="${REGISTRY_PORT:-}"
REGISTRY=""
REGISTRY_PID=""
REGISTRY_DIR=""
_REGISTRY_CONFIG="$(cd "$(dirname "${BASH_SOURCE[0]}")/../registry" && pwd)/config.yml"

_registry_answers() {
  curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/v2/" 2>/dev/null
}

_registry_port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

_registry_tmp() {
  if [ -z "$REGISTRY_DIR" ]; then
    REGISTRY_DIR=$(mktemp -d /tmp/baton-registry.XXXXXX) || return 1
  fi
}

# buildah with storage private to this run.
_bh() {
  _registry_tmp || return 1
  buildah --root "$REGISTRY_DIR/buildah/root" --runroot "$REGISTRY_DIR/buildah/run" \
    --storage-driver vfs "$@"
}

start_registry() {
  command -v docker-registry >/dev/null || { echo "start_registry: docker-registry is not installed" >&2; return 1; }
  _registry_tmp || return 1
  local port="$REGISTRY_PORT"
  if [ -z "$port" ]; then
    port=5000
    while _registry_port_busy "$port"; do
      port=$((port + 1))
      if [ "$port" -ge 5020 ]; then echo "start_registry: ports 5000-5019 are all busy" >&2; return 1; fi
    done
  elif _registry_port_busy "$port"; then
    echo "start_registry: 127.0.0.1:$port is already in use" >&2
    return 1
  fi
  mkdir -p "$REGISTRY_DIR/data"
  REGISTRY_HTTP_ADDR="127.0.0.1:$port" \
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$REGISTRY_DIR/data" \
    docker-registry serve "$_REGISTRY_CONFIG" >"$REGISTRY_DIR/registry.log" 2>&1 &
  REGISTRY_PID=$!
  local _i
  for _i in $(seq 1 100); do
    if _registry_answers "$port"; then
      REGISTRY_PORT=$port
      REGISTRY="127.0.0.1:$port"
      export REGISTRY REGISTRY_PORT
      return 0
    fi
    if ! kill -0 "$REGISTRY_PID" 2>/dev/null; then
      echo "start_registry: docker-registry exited; its log:" >&2
      tail -n 20 "$REGISTRY_DIR/registry.log" >&2
      REGISTRY_PID=""
      return 1
    fi
    sleep 0.1
  done
  echo "start_registry: no answer on http://127.0.0.1:$port/v2/ after 10s" >&2
  return 1
}

stop_registry() {
  if [ -n "$REGISTRY_PID" ]; then
    kill "$REGISTRY_PID" 2>/dev/null
    wait "$REGISTRY_PID" 2>/dev/null
    REGISTRY_PID=""
  fi
  if [ -n "$REGISTRY_DIR" ]; then
    # vfs layers may hold read-only dirs; buildah knows how to delete its own storage.
    _bh rm --all >/dev/null 2>&1
    rm -rf "$REGISTRY_DIR"
    REGISTRY_DIR=""
  fi
  return 0
}

# build_hello_image NAME:TAG TEXT [--format v2s2]
build_hello_image() {
  local image="${1:?build_hello_image NAME:TAG TEXT [--format v2s2]}" text="${2-}"
  shift 2 || shift $#
  local format=()
  if [ "${1-}" = "--format" ]; then format=(--format "${2:?--format needs a value}"); fi
  [ -n "$REGISTRY" ] || { echo "build_hello_image: start_registry first" >&2; return 1; }
  [ -x /bin/busybox ] || { echo "build_hello_image: /bin/busybox (busybox-static) is missing" >&2; return 1; }
  local ctx="$REGISTRY_DIR/ctx-${image//[:\/]/-}"
  rm -rf "$ctx" && mkdir -p "$ctx/bin" "$ctx/www" "$ctx/tmp" || return 1
  cp /bin/busybox "$ctx/bin/busybox" || return 1
  local applet
  for applet in sh ash cat echo ls sleep hostname env id ps wget httpd true false kill mkdir rm printf head grep tty stty; do
    ln -s busybox "$ctx/bin/$applet"
  done
  printf '%s\n' "$text" >"$ctx/www/index.html"
  chmod 1777 "$ctx/tmp"
  local ctr
  ctr=$(_bh from scratch) || { echo "build_hello_image: buildah from scratch failed" >&2; return 1; }
  _bh copy "$ctr" "$ctx/" / >/dev/null &&
    _bh config --entrypoint '["/bin/busybox","httpd","-f","-v","-p","8080","-h","/www"]' \
      --cmd '' --env PATH=/bin --port 8080/tcp --workingdir / "$ctr" &&
    _bh commit -q "$ctr" "localhost/$image" >/dev/null &&
    _bh rm "$ctr" >/dev/null &&
    _bh push -q --tls-verify=false "${format[@]}" "localhost/$image" "docker://$REGISTRY/$image" || {
      echo "build_hello_image: building or pushing $image failed" >&2
      return 1
    }
}

# save_image_archive NAME:TAG FILE [docker-archive|oci-archive]
save_image_archive() {
  local image="${1:?save_image_archive NAME:TAG FILE [docker-archive|oci-archive]}" file="${2:?FILE}" kind="${3:-docker-archive}"
  rm -f "$file"
  _bh push -q "localhost/$image" "$kind:$file:localhost/$image" || {
    echo "save_image_archive: writing $kind $file failed" >&2
    return 1
  }
}
