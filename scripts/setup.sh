#!/usr/bin/env bash
# Installs what shardbox needs on a fresh Debian 12 machine, idempotently:
#   system packages: libisal2 (fast erasure kernel); with --test also PostgreSQL 15,
#   rclone and s3cmd (real servers and clients the tests use), Chromium (the browser tests
#   drive it through Playwright's Python API; no browser is downloaded) and vpx-tools
#   (vpxenc makes the small video the browser tests play), ClamAV's clamd (the scan tests
#   start their own, with a signature database they build: nothing is downloaded);
#   Python packages: a virtualenv in .venv with shardbox and its dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

pkgs=(libisal2)
[ $want_test = 1 ] && pkgs+=(postgresql-15 rclone s3cmd chromium vpx-tools clamav clamav-daemon)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else SUDO=none; fi
  if [ "$SUDO" = none ]; then
    echo "setup: please install these Debian packages as root: ${missing[*]}" >&2
    [ $want_test = 1 ] && exit 1
  else
    echo "setup: installing Debian packages: ${missing[*]}"
    # The tests start their own throwaway PostgreSQL clusters; skip the package's default one.
    $SUDO mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/shardbox.conf >/dev/null
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$py" -m venv .venv
fi
stamp=.venv/.shardbox-installed
want=$(cat pyproject.toml erasure/_interleave.c | sha256sum | cut -d" " -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
  echo "$want" > "$stamp"
fi
