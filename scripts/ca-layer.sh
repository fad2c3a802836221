#!/usr/bin/env bash
# `make ca-layer CA=bundle.pem`: a Lambda layer zip holding the database's
# CA bundle as meshhook-health/ca.pem. Lambda unpacks layers under /opt, and
# the template sets PGSSLROOTCERT=/opt/meshhook-health/ca.pem when its
# DatabaseCaLayerArn parameter names the published layer. With PUBLISH=1
# (and the AWS CLI) it also publishes the layer and prints its ARN.
# Writes target/ca-layer/ca-layer.zip (OUT= to change).
set -euo pipefail
cd "$(dirname "$0")/.."
ca=${CA:-${1:-}}
out=${OUT:-target/ca-layer/ca-layer.zip}
[ -n "$ca" ] || { echo "make ca-layer: set CA to the PEM bundle, e.g. make ca-layer CA=prod-ca-2021.crt" >&2; exit 2; }
[ -r "$ca" ] || { echo "make ca-layer: cannot read CA=$ca" >&2; exit 2; }
grep -q -- '-----BEGIN CERTIFICATE-----' "$ca" ||
    { echo "make ca-layer: CA=$ca holds no PEM certificate (-----BEGIN CERTIFICATE-----)" >&2; exit 2; }
# zip (Debian's zip package, which `make test` provisions) or python3.
if command -v zip >/dev/null; then
    zipper=(zip -q -r)
elif command -v python3 >/dev/null; then
    zipper=(python3 -m zipfile -c)
else
    echo "make ca-layer: needs zip (apt-get install zip) or python3 to write the zip" >&2
    exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/meshhook-health" "$(dirname "$out")"
cp "$ca" "$stage/meshhook-health/ca.pem"
chmod 644 "$stage/meshhook-health/ca.pem"
rm -f "$out"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
(cd "$stage" && "${zipper[@]}" "$out" meshhook-health)
echo "ca-layer: $out ($(grep -c -- '-----BEGIN CERTIFICATE-----' "$ca") certificate(s))"

publish=(aws lambda publish-layer-version --layer-name "${LAYER_NAME:-meshhook-health-ca}"
    --zip-file "fileb://$out" --compatible-architectures arm64
    --query LayerVersionArn --output text)
if [ "${PUBLISH:-}" = 1 ]; then
    command -v aws >/dev/null || { echo "make ca-layer: PUBLISH=1 needs the AWS CLI (pip install awscli)" >&2; exit 1; }
    arn=$("${publish[@]}")
    echo "DatabaseCaLayerArn=$arn"
else
    echo "publish it with: ${publish[*]}"
    echo "then deploy with DatabaseCaLayerArn=<that ARN>"
fi
