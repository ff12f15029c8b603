#!/usr/bin/env bash
# Start the local mail catcher for `make run`: bin/mailpit takes the account mail on
# 127.0.0.1:1025 (SMTP) and shows it at http://127.0.0.1:8025. Does nothing when something already
# listens on the SMTP port (a mailpit from an earlier run, or your own server).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

smtp_port="${SMTP_PORT:-1025}"
ui_port="${MAILPIT_UI_PORT:-8025}"
if (exec 3<>"/dev/tcp/127.0.0.1/${smtp_port}") 2>/dev/null; then
  echo "mailpit: something already listens on 127.0.0.1:${smtp_port}; using it"
  exit 0
fi
mkdir -p .run
nohup bin/mailpit --smtp "127.0.0.1:${smtp_port}" --listen "127.0.0.1:${ui_port}" \
  --database .run/mailpit.db --disable-version-check --quiet >.run/mailpit.log 2>&1 &
for _ in $(seq 1 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/${smtp_port}") 2>/dev/null; then
    echo "mailpit: account mail is caught at http://127.0.0.1:${ui_port}"
    exit 0
  fi
  sleep 0.1
done
echo "mailpit: did not start (see .run/mailpit.log)" >&2
exit 1
