#!/bin/bash
# healthcheck PORT [PATH]: exit 0 when GET http://127.0.0.1:PORT/PATH answers 200.
# Uses bash's /dev/tcp so the runtime image needs no curl or wget.
set -euo pipefail
port="${1:?usage: healthcheck PORT [PATH]}"
path="${2:-/readyz}"
exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3
IFS= read -r -t 4 status <&3
exec 3<&-
case "$status" in
  "HTTP/1."?" 200 "*) exit 0 ;;
  *) echo "unhealthy: ${status:-no answer}" >&2; exit 1 ;;
esac
