#!/usr/bin/env bash
# `make deploy`: sam build, then sam deploy with samconfig.toml's defaults.
# Asks only for what a deployment cannot guess — stack name, region, the
# Secrets Manager secret holding the database URL, the Supabase project —
# or takes them from STACK_NAME, AWS_REGION, DATABASE_SECRET_ID,
# SUPABASE_URL and SUPABASE_ANON_KEY. Every other template parameter keeps
# its default; set more with PARAMS="HealthComponents=database,workers,queue
# AlarmEmail=ops@example.com". docs/OPERATIONS.md walks through it.
set -euo pipefail
cd "$(dirname "$0")/.."

ask() { # ask VAR "prompt" [default] [secret]
    local var=$1 prompt=$2 default=${3:-} secret=${4:-} value
    [ -n "${!var:-}" ] && return
    if [ -n "$secret" ]; then
        read -r -s -p "$prompt: " value
        echo
    else
        read -r -p "$prompt${default:+ [$default]}: " value
    fi
    printf -v "$var" '%s' "${value:-$default}"
}

for tool in sam cargo-lambda; do
    command -v "$tool" >/dev/null || { echo "deploy: $tool missing (pip install aws-sam-cli cargo-lambda)" >&2; exit 1; }
done

ask STACK_NAME "Stack name" meshhook-health
ask AWS_REGION "AWS region" "${AWS_DEFAULT_REGION:-}"
ask DATABASE_SECRET_ID "Secrets Manager secret with the database URL or RDS JSON (name or ARN)"
ask SUPABASE_URL "Supabase project URL (empty: leave Supabase out)"
overrides=("DatabaseSecretId=$DATABASE_SECRET_ID")
if [ -n "$SUPABASE_URL" ]; then
    ask SUPABASE_ANON_KEY "Supabase publishable (anon) key" "" secret
    overrides+=("SupabaseUrl=$SUPABASE_URL" "SupabaseAnonKey=$SUPABASE_ANON_KEY" "HealthComponents=database,supabase,workers")
else
    overrides+=("HealthComponents=database,workers")
fi
[ -n "$AWS_REGION" ] || { echo "deploy: a region is required" >&2; exit 1; }
[ -n "$DATABASE_SECRET_ID" ] || { echo "deploy: DATABASE_SECRET_ID is required" >&2; exit 1; }
# shellcheck disable=SC2206 # PARAMS is a space-separated list on purpose.
overrides+=(${PARAMS:-})

scripts/arm64-target.sh
sam build
sam deploy --stack-name "$STACK_NAME" --region "$AWS_REGION" --parameter-overrides "${overrides[@]}"
