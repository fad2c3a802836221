#!/usr/bin/env bash
# `make deploy`: sam build, then sam deploy with samconfig.toml's defaults.
#
# A new stack: asks for what a deployment cannot guess — stack name, region,
# how the function reaches the database (a Secrets Manager secret, or the
# URL itself), the Supabase project, MeshHook's version — unless the
# environment already says (STACK_NAME, AWS_REGION, DATABASE_SECRET_ID or
# DATABASE_URL, SUPABASE_URL + SUPABASE_ANON_KEY, MESHHOOK_VERSION).
#
# An existing stack: changes only what the environment (or an answer)
# names; every other parameter keeps the value the stack has (sam deploy
# sends UsePreviousValue for parameters it is not given), so enabled
# components, alarms and secrets survive a redeploy. HEALTH_COMPONENTS,
# ALARM_EMAIL and PARAMS="Name=value ..." change more. Without a terminal
# it asks nothing and uses only the environment. docs/OPERATIONS.md walks
# through it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

interactive=false
[ -t 0 ] && interactive=true

# ask VAR "prompt" [default] [secret]: sets VAR from the terminal (the
# default when the answer is empty) unless the environment sets it, even to
# empty; without a terminal, to the default.
ask() {
    local var=$1 prompt=$2 default=${3:-} secret=${4:-} value=""
    [ -n "${!var+set}" ] && return
    if [ "$interactive" = true ]; then
        if [ -n "$secret" ]; then
            read -r -s -p "$prompt: " value
            echo
        else
            read -r -p "$prompt${default:+ [$default]}: " value
        fi
    fi
    printf -v "$var" '%s' "${value:-$default}"
}

scripts/need.sh deploy sam="pip install aws-sam-cli" cargo-lambda="pip install cargo-lambda"

ask STACK_NAME "Stack name" meshhook-health
ask AWS_REGION "AWS region" "${AWS_DEFAULT_REGION:-}"
[ -n "$STACK_NAME" ] || { echo "make deploy: STACK_NAME is empty" >&2; exit 1; }
[ -n "$AWS_REGION" ] || { echo "make deploy: no region: set AWS_REGION" >&2; exit 1; }

existing=false
if sam list stack-outputs --stack-name "$STACK_NAME" --region "$AWS_REGION" --output json >/dev/null 2>&1; then
    existing=true
    echo "==> updating stack $STACK_NAME in $AWS_REGION: parameters not given keep their current values"
else
    echo "==> creating stack $STACK_NAME in $AWS_REGION"
fi

overrides=()
# set Name value: one parameter override, quoted as sam's parser wants it
# (an empty value must be "", a value may hold spaces).
set_param() { overrides+=("$1=\"${2//\"/\\\"}\""); }
# A new stack must be told how to reach the database; an existing one keeps
# its route unless one is given.
if [ -z "${DATABASE_URL:-}" ] && [ -z "${DATABASE_SECRET_ID:-}" ] && [ "$existing" = false ]; then
    ask DATABASE_SECRET_ID "Secrets Manager secret with the database URL or RDS JSON (name or ARN; empty: paste the URL instead)"
    if [ -z "${DATABASE_SECRET_ID:-}" ]; then
        ask DATABASE_URL "Database URL (pooler host, sslmode=verify-full; stored as an encrypted Lambda variable)" "" secret
    fi
    if [ -z "${DATABASE_URL:-}" ] && [ -z "${DATABASE_SECRET_ID:-}" ]; then
        echo "make deploy: a new stack needs DATABASE_SECRET_ID or DATABASE_URL" >&2
        exit 1
    fi
fi
# One route at a time: naming one clears the other.
if [ -n "${DATABASE_SECRET_ID:-}" ]; then
    set_param DatabaseSecretId "$DATABASE_SECRET_ID"
    set_param DatabaseUrl ""
elif [ -n "${DATABASE_URL:-}" ]; then
    set_param DatabaseUrl "$DATABASE_URL"
    set_param DatabaseSecretId ""
fi

if [ "$existing" = false ]; then
    ask SUPABASE_URL "Supabase project URL (empty: leave Supabase out)"
fi
if [ -n "${SUPABASE_URL:-}" ]; then
    ask SUPABASE_ANON_KEY "Supabase publishable (anon) key" "" secret
    set_param SupabaseUrl "$SUPABASE_URL"
    if [ -n "${SUPABASE_ANON_KEY:-}" ]; then set_param SupabaseAnonKey "$SUPABASE_ANON_KEY"; fi
fi

# Components: as asked, else for a new stack what the answers imply
# (Supabase only with its URL); an existing stack keeps its own (a queue or
# runs component stays enabled).
if [ -n "${HEALTH_COMPONENTS:-}" ] || [ "$existing" = false ]; then
    set_param HealthComponents "$(default_components)"
fi

ask MESHHOOK_VERSION "MeshHook version to report (empty: $([ "$existing" = true ] && echo "keep the stack's" || echo "the one the workers' heartbeats carry"))"
if [ -n "${MESHHOOK_VERSION:-}" ]; then set_param MeshHookVersion "$MESHHOOK_VERSION"; fi
if [ -n "${ALARM_EMAIL:-}" ]; then set_param AlarmEmail "$ALARM_EMAIL"; fi
# shellcheck disable=SC2206 # PARAMS is a space-separated list on purpose.
overrides+=(${PARAMS:-})

scripts/arm64-target.sh
sam build
args=(--stack-name "$STACK_NAME" --region "$AWS_REGION")
if [ ${#overrides[@]} -gt 0 ]; then args+=(--parameter-overrides "${overrides[@]}"); fi
sam deploy "${args[@]}"
