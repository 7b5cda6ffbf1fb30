#!/bin/bash
# armada bootstrap: install armada and run its llm deploy on this host with
# pyinfra's @local connector. Written by `armada cloud-init` into the
# instance's user-data; run once by cloud-init's runcmd and again at every
# boot by armada-bootstrap.service. A converged host changes nothing.
#
#   /etc/armada/bootstrap/bootstrap.env   how to install armada, the proxy, secret files
#   /etc/armada/bootstrap/inventory.py    this host (@local) and its group's data (data.json)
#   /var/log/armada-bootstrap.log         everything this script and pyinfra print
#   /var/lib/armada-bootstrap/status.json the result: serving | failed, exit code, health report
set -uo pipefail

CONF=/etc/armada/bootstrap
STATE=/var/lib/armada-bootstrap
LOG=/var/log/armada-bootstrap.log
VENV=/opt/armada-bootstrap/venv
mkdir -p "$STATE"
exec >>"$LOG" 2>&1
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
echo "== armada bootstrap, $STARTED"

set -a
. "$CONF/bootstrap.env"
set +a

finish() {  # finish EXIT_CODE MESSAGE
    python3 - "$1" "$2" "$STARTED" "$STATE" "$LOG" "${ARMADA_INSTALL}" <<'PY'
import json, os, sys, time
code, message, started, state, log, install = sys.argv[1:]
report = os.path.join(state, "health.json")
try:
    with open(report) as handle:
        health = json.load(handle)
except (OSError, ValueError):
    health = None
status = {
    "result": "serving" if code == "0" else "failed",
    "exit_code": int(code),
    "message": message,
    "started": started,
    "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "armada": install,
    "log": log,
    "health_report": report if health is not None else None,
    "health_ok": all(entry.get("ok") for entry in health.values()) if health else False,
}
partial = os.path.join(state, ".status.json")
with open(partial, "w") as handle:
    json.dump(status, handle, indent=2)
os.replace(partial, os.path.join(state, "status.json"))
PY
    echo "== armada bootstrap: $2 (exit $1)"
    exit "$1"
}

# 1. the egress CA certificates given in user-data (pip and the hub use the system store)
if [ -d /usr/local/share/ca-certificates/armada ]; then
    update-ca-certificates >/dev/null || finish 3 "update-ca-certificates failed"
    export PIP_CERT=/etc/ssl/certs/ca-certificates.crt REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
fi

# 2. a venv for armada and pyinfra (python3-venv is in the user-data's packages;
#    installed here too when this runs without cloud-init's package step)
if [ ! -x "$VENV/bin/python" ]; then
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        # apt honours http_proxy from bootstrap.env
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv \
            || finish 4 "cannot install python3-venv"
    fi
    python3 -m venv "$VENV" || finish 4 "cannot create $VENV"
fi

# 3. armada itself, reinstalled only when what to install changed
if [ "$(cat "$STATE/armada-install" 2>/dev/null)" != "$ARMADA_INSTALL" ] || [ ! -x "$VENV/bin/armada" ]; then
    "$VENV/bin/pip" install -q ${ARMADA_INDEX_URL:+--index-url "$ARMADA_INDEX_URL"} "$ARMADA_INSTALL" \
        || finish 5 "pip could not install $ARMADA_INSTALL"
    printf '%s' "$ARMADA_INSTALL" > "$STATE/armada-install"
fi

# 4. secrets come from files the cloud writes; never from this script
for secret in ${ARMADA_SECRET_FILES:-}; do
    [ -s "$secret" ] || finish 6 "secret file $secret is missing or empty: write it before this runs (your cloud's secret agent)"
    chmod 600 "$secret"
done

# 5. the deploy, this host against itself
DEPLOY=$("$VENV/bin/armada" path deploys/llm.py) || finish 7 "this armada has no deploys/llm.py"
cd "$STATE" || finish 7 "no $STATE"
"$VENV/bin/pyinfra" -y "$CONF/inventory.py" "$DEPLOY" --data "armada_health_report=$STATE/health.json"
code=$?
if [ "$code" -eq 0 ]; then
    finish 0 "deployed; every health check passed"
fi
finish "$code" "the deploy failed: see $LOG and $STATE/health.json"
