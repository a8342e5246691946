#!/usr/bin/env bash
# What tests/image needs on the machine, installed only when missing:
#   - Debian 12's docker.io (dockerd 20.10, containerd, runc, its CLI) and mmdebstrap;
#   - the Compose v2 CLI plugin (Debian 12's docker-compose is v1, which cannot read
#     deploy/compose.yaml): taken from Debian 13's docker-compose package with apt
#     (a private apt state under the cache folder; the system's apt sources are left
#     as they are) and unpacked under $CACHE/config/cli-plugins, for DOCKER_CONFIG.
# Usage: tests/image/deps.sh CACHE_DIR
set -euo pipefail
CACHE=${1:?usage: deps.sh CACHE_DIR}
missing=""
test -x /usr/sbin/dockerd && test -x /usr/bin/docker || missing="$missing docker.io"
command -v mmdebstrap >/dev/null || missing="$missing mmdebstrap"
if [ -n "$missing" ]; then
  echo "installing Debian packages:$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
plugin="$CACHE/config/cli-plugins/docker-compose"
if [ ! -x "$plugin" ]; then
  echo "fetching the Compose v2 plugin (Debian 13's docker-compose package)"
  apt_dir="$CACHE/apt"
  mkdir -p "$apt_dir/sources" "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$CACHE/config/cli-plugins"
  cat > "$apt_dir/sources/trixie.sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt_dir/sources"
        -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir" -o "Dir::Cache::archives=$apt_dir/archives"
        -o "Dir::State::status=/dev/null" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
  apt-get "${opts[@]}" update -qq
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get "${opts[@]}" download -qq docker-compose)
  dpkg-deb -x "$tmp"/docker-compose_*.deb "$tmp/x"
  install -m 0755 "$tmp/x/usr/libexec/docker/cli-plugins/docker-compose" "$plugin.part"
  mv "$plugin.part" "$plugin"
  rm -rf "$apt_dir/lists"
fi
