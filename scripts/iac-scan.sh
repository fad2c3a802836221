#!/usr/bin/env bash
# `make scan`: checkov (PyPI) over template.yaml, twice — as it deploys by
# default, and with every optional part switched on (canary, degraded alarm,
# secret under a customer key, CA layer, reserved concurrency, alarm e-mail,
# every component), because checkov only looks at resources whose condition
# holds with the parameters' defaults. A check a resource fails on purpose
# is skipped in that resource's Metadata with a one-line reason; anything
# else fails the scan.
#
# checkov pins an old boto3 that breaks aws-sam-cli when both share one
# Python environment, so it lives in a virtual environment of its own
# (CHECKOV_VENV, default ~/.cache/meshhook-health/checkov), made on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${CHECKOV_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/meshhook-health/checkov}
if [ ! -x "$venv/bin/checkov" ]; then
    scripts/provision.sh scan
    python3 -m venv "$venv" 2>/dev/null || {
        echo "make scan: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2
        exit 1
    }
    echo "make scan: installing checkov into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check checkov
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/default" "$work/all-on"
cp template.yaml "$work/default/template.yaml"
# Every optional part on: the same template with other defaults.
python3 - template.yaml "$work/all-on/template.yaml" <<'PY'
import re, sys
defaults = {
    "DatabaseSecretId": "meshhook/health-db",
    "DatabaseSecretKmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "DatabaseCaLayerArn": "arn:aws:lambda:eu-west-1:123456789012:layer:meshhook-health-ca:1",
    "ReservedConcurrency": "10",
    "AlarmEmail": "ops@example.com",
    "EnableCanary": "true",
    "EnableDegradedAlarm": "true",
    "EnableCapacityAlarm": "true",
    "DatabaseSizeLimitBytes": "524288000",
    "HealthComponents": "database,supabase,workers,queue,runs,partitions",
}
text = open(sys.argv[1]).read()
for name, value in defaults.items():
    text, n = re.subn(rf"(\n  {name}:\n(?:    .*\n)*?    Default: ).*\n", rf'\g<1>"{value}"\n', text, count=1)
    assert n == 1, f"no Default for {name}"
open(sys.argv[2], "w").write(text)
PY
status=0
for variant in default all-on; do
    echo "--- checkov: template.yaml, $variant"
    # --skip-download: no Prisma Cloud look-ups (nothing leaves this machine).
    "$venv/bin/checkov" --quiet --compact --skip-download --framework cloudformation \
        -f "$work/$variant/template.yaml" || status=1
done
exit "$status"
