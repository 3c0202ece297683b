#!/usr/bin/env bash
# Debian packages behind the local topology checks (make test runs this first; idempotent):
#   postgresql      the metadata DB of the native topology (tests/topology, make services-up)
#   docker-compose  1.29, for `docker-compose config` on docker-compose.yaml (tests/compose)
#   chromium        the headless browser of the UI test (tests/ui, driven by Playwright)
# Installs only what is missing, with apt-get as root or through passwordless sudo.
set -euo pipefail
missing=()
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && ! command -v initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo)
else
  echo "install_services.sh: ${missing[*]} missing; install with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
command -v apt-get >/dev/null 2>&1 || {
  echo "install_services.sh: no apt-get; install a PostgreSQL server, docker-compose and chromium yourself" >&2
  exit 1
}
echo "==> apt-get install ${missing[*]}"
# The tests start their own throwaway cluster: the package need not create and start one on :5432.
"${SUDO[@]}" mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" | "${SUDO[@]}" tee /etc/postgresql-common/createcluster.d/dpc-elt.conf >/dev/null
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
