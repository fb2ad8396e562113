#!/usr/bin/env bash
# Run by `npm test` first (the "pretest" script): the tests drive real system tools, and this
# installs whichever are missing from Debian's packages (never a downloaded browser). Nothing is
# done when all are there. Not root, or no apt-get: it says what is missing and the tests that
# need it will fail, as they should.
#   faketime: clock-skew tests · chromium: dashboard browser tests · tmux: terminal tests ·
#   openssl: a self-signed TLS server · psql (postgresql-client): PostgreSQL checks
set -euo pipefail
need=()
for tool in faketime:faketime chromium:chromium tmux:tmux openssl:openssl psql:postgresql-client; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test tools missing: ${need[*]} (install them from your distribution's packages; the tests that drive them will fail)" >&2
  exit 0
fi
echo "installing the tools the tests drive: ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
