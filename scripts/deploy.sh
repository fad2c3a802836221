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
# ALARM_EMAIL and PARAMS="Name=value ..." change more. A database route or
# Supabase setting taken from the environment (the same shell may have
# exported DATABASE_URL for `make run`) is listed by name and must be
# confirmed: at the terminal, or with CONFIRM=1 without one; otherwise it
# stops before building. Without a terminal it asks nothing, uses only the
# environment and deploys without sam's changeset prompt.
# SUPABASE_ACCESS_TOKEN + SUPABASE_PROJECT_REF choose the Management API.
# docs/DEPLOY.md walks through it.
set -euo pipefail
cd "$(dirname "$0")/.."

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
# Management API mode: both or neither (the template refuses one alone).
if [ -n "${SUPABASE_ACCESS_TOKEN:-}" ] || [ -n "${SUPABASE_PROJECT_REF:-}" ]; then
    if [ -z "${SUPABASE_ACCESS_TOKEN:-}" ] || [ -z "${SUPABASE_PROJECT_REF:-}" ]; then
        echo "make deploy: SUPABASE_ACCESS_TOKEN and SUPABASE_PROJECT_REF go together (the Management API needs both)" >&2
        exit 1
    fi
    set_param SupabaseAccessToken "$SUPABASE_ACCESS_TOKEN"
    set_param SupabaseProjectRef "$SUPABASE_PROJECT_REF"
    echo "make deploy: warning: SupabaseAccessToken is stored as a plain Lambda environment variable (anyone allowed lambda:GetFunctionConfiguration reads it); use a scoped token: this project only, read permissions only" >&2
fi

# Components: only as asked. The template's default (empty) is database and
# workers, plus supabase when its settings are given; an existing stack
# keeps its own (a queue or runs component stays enabled).
if [ -n "${HEALTH_COMPONENTS:-}" ]; then
    set_param HealthComponents "$HEALTH_COMPONENTS"
fi

# An existing stack's database route and Supabase settings change only when
# confirmed: names, never values.
if [ "$existing" = true ]; then
    sensitive=()
    for override in "${overrides[@]}"; do
        name=${override%%=*}
        case "$name" in
        DatabaseUrl | DatabaseSecretId | SupabaseUrl | SupabaseAnonKey | SupabaseAccessToken | SupabaseProjectRef)
            value=${override#*=}
            if [ "$value" = '""' ]; then sensitive+=("$name (cleared)"); else sensitive+=("$name"); fi
            ;;
        esac
    done
    if [ ${#sensitive[@]} -gt 0 ]; then
        echo "make deploy: from the environment, this would change stack $STACK_NAME's: ${sensitive[*]}" >&2
        if [ "${CONFIRM:-}" = 1 ]; then
            echo "make deploy: CONFIRM=1: applying them" >&2
        elif [ "$interactive" = true ]; then
            read -r -p "Apply these changes to $STACK_NAME? [y/N] " answer
            case "$answer" in
            y | Y | yes) ;;
            *)
                echo "make deploy: nothing deployed" >&2
                exit 1
                ;;
            esac
        else
            echo "make deploy: stopped before sam deploy: run it at a terminal to confirm, or with CONFIRM=1; unset those variables (DATABASE_URL, DATABASE_SECRET_ID, SUPABASE_*) to keep the stack's values" >&2
            exit 1
        fi
    fi
fi

ask MESHHOOK_VERSION "MeshHook version to report (empty: $([ "$existing" = true ] && echo "keep the stack's" || echo "the one the workers' heartbeats carry"))"
if [ -n "${MESHHOOK_VERSION:-}" ]; then set_param MeshHookVersion "$MESHHOOK_VERSION"; fi
if [ -n "${ALARM_EMAIL:-}" ]; then set_param AlarmEmail "$ALARM_EMAIL"; fi
# shellcheck disable=SC2206 # PARAMS is a space-separated list on purpose.
overrides+=(${PARAMS:-})

scripts/arm64-target.sh
sam build
args=(--stack-name "$STACK_NAME" --region "$AWS_REGION")
# samconfig.toml asks to confirm the changeset; nobody can answer without a
# terminal (CI), where sam would wait or abort.
if [ "$interactive" = false ]; then args+=(--no-confirm-changeset); fi
if [ ${#overrides[@]} -gt 0 ]; then args+=(--parameter-overrides "${overrides[@]}"); fi
sam deploy "${args[@]}"
