#!/usr/bin/env bash
# What DATABASE_SECRET_ID adds to start-up: examples/startup_cost (release)
# RUNS times with DATABASE_URL, then with the same URL behind a local
# Secrets Manager stand-in (AWS_ENDPOINT_URL_SECRETS_MANAGER). Prints medians
# of the configuration step in microseconds. Needs python3 for the stand-in.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
cargo build --release --locked --quiet --example startup_cost
bin=${CARGO_TARGET_DIR:-target}/release/examples/startup_cost
url="postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"
port=54392
python3 - "$port" "$url" <<'PY' &
import http.server, json, sys
port, url = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = json.dumps({"Name": "db", "SecretString": url}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/x-amz-json-1.1")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
stub=$!
trap 'kill $stub' EXIT
sleep 0.5
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
common=(HEALTH_COMPONENTS=database HEALTH_TIMEOUT_MS=1)
with_url=$(for _ in $(seq "$runs"); do env "${common[@]}" DATABASE_URL="$url" "$bin"; done | awk '{print $1}' | median)
with_secret=$(for _ in $(seq "$runs"); do
    env "${common[@]}" DATABASE_SECRET_ID=db AWS_REGION=eu-west-1 AWS_ACCESS_KEY_ID=AKIDEXAMPLE \
        AWS_SECRET_ACCESS_KEY=example AWS_EC2_METADATA_DISABLED=true \
        AWS_ENDPOINT_URL_SECRETS_MANAGER="http://127.0.0.1:$port" "$bin"
done | awk '{print $1}' | median)
printf 'configuration step, median of %s fresh processes (us):\n  DATABASE_URL        %s\n  DATABASE_SECRET_ID  %s\n' \
    "$runs" "$with_url" "$with_secret"
