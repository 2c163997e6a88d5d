#!/usr/bin/env bash
# A CI bot's preview environment for one branch, with one-shot `fly-machines-mcp call`
# invocations (no MCP client): provision the preview (a dry run first), check it
# through exit codes and the JSON printed on stdout, then tear it down (confirmed by
# name) and check it is gone.
#
#   cargo build && examples/ci_bot.sh [BRANCH]        # default branch: feature/login-page
#
# Offline: it starts the standalone simulator (`fly-machines-mcp sim`, empty world) on
# a free loopback port, waits until it listens, and stops it on exit. In real CI, drop
# the simulator part: leave FLY_API_HOSTNAME and FLY_API_BASE_URL unset and give
# FLY_API_TOKEN an org token (`fly tokens create org`), kept in the CI's secret store.
#
# `call` exit codes: 0 the tool succeeded, 1 the tool failed (JSON `{"error": …}` on
# stdout, the message on stderr), 2 a usage error (bad arguments, a refused tool).
#
# The binary is $FLY_MACHINES_MCP_BIN if set, else target/debug/fly-machines-mcp of
# this checkout, else fly-machines-mcp on PATH. SIM_TIME_SCALE (default 0.05) scales
# the simulator's Fly-like latencies. `tests/it/examples/` runs this script.
set -euo pipefail

branch="${1:-feature/login-page}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

bin="${FLY_MACHINES_MCP_BIN:-}"
if [ -z "$bin" ]; then
  if [ -x "$here/../target/debug/fly-machines-mcp" ]; then
    bin="$here/../target/debug/fly-machines-mcp"
  elif command -v fly-machines-mcp >/dev/null 2>&1; then
    bin="fly-machines-mcp"
  else
    echo "ci_bot: no fly-machines-mcp binary: run \`cargo build\` or set FLY_MACHINES_MCP_BIN" >&2
    exit 2
  fi
fi

say() { printf 'ci_bot: %s\n' "$*"; }
die() { printf 'ci_bot: FAILED: %s\n' "$*" >&2; exit 1; }

# A Fly app name from the branch: lowercase letters, digits and dashes.
slug=$(printf '%s' "$branch" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9' '-' |
  sed -e 's/--*/-/g' -e 's/^-//' -e 's/-$//' | cut -c1-40)
app="preview-${slug%-}"

work=$(mktemp -d)
sim_pid=""
cleanup() {
  if [ -n "$sim_pid" ]; then
    kill "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the simulator: a free loopback port, a token it insists on -----------------------
token="ci-bot-simulated-token"
: >"$work/sim.log" # exists before the background job's own redirection runs
FLY_MCP_TOKEN="$token" "$bin" sim --addr 127.0.0.1:0 --scenario empty \
  --time-scale "${SIM_TIME_SCALE:-0.05}" >>"$work/sim.log" 2>&1 &
sim_pid=$!
deadline=$((SECONDS + 20))
base=""
while :; do
  base=$(sed -n 's/^fly simulator listening on \(http:[^ ]*\)$/\1/p' "$work/sim.log")
  [ -n "$base" ] && break
  kill -0 "$sim_pid" 2>/dev/null || die "the simulator exited: $(cat "$work/sim.log")"
  [ "$SECONDS" -lt "$deadline" ] || die "the simulator did not listen within 20 s"
  sleep 0.1
done
say "simulator listening on $base"

# --- how the bot reaches Fly (here: the simulator) -------------------------------------
unset FLY_MCP_ACCESS_TOKEN FLY_ACCESS_TOKEN FLY_MCP_SANDBOX FLY_MCP_TOOLSETS FLY_MCP_READ_ONLY
export FLY_API_HOSTNAME="$base" FLY_API_BASE_URL="$base" FLY_API_TOKEN="$token"
export FLY_MCP_ALLOW_APP='preview-*'          # this bot touches preview apps only
export FLY_MCP_AUDIT_LOG="$work/audit.jsonl"  # one JSON line per write/destructive call
# Signs confirmation tokens: each `call` is its own process, so both calls of a
# confirmed destruction need the same key (a CI secret in real use).
FLY_MCP_CONFIRM_KEY=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
export FLY_MCP_CONFIRM_KEY

# call TOOL ARGS_JSON: runs one tool; sets $out (the JSON it printed) and $rc.
call() {
  rc=0
  out=$("$bin" call "$1" --args "$2" 2>>"$work/call.err") || rc=$?
}
# field NAME: a top-level scalar of $out (the JSON is pretty-printed, 2-space indent).
field() {
  printf '%s\n' "$out" |
    sed -nE -e "s/^  \"$1\": \"(.*)\",?\$/\1/p" -e t -e "s/^  \"$1\": ([^\"{[][^,]*),?\$/\1/p" | head -n1
}

args=$(printf '{"app":"%s","image":"nginx:1.27","region":"iad","internal_port":80,"autostop":"stop","owner":"ci:%s","expires_at":"72h"' "$app" "$branch")

# 1. plan and price
call provision_environment "$args,\"dry_run\":true}"
[ "$rc" -eq 0 ] || die "dry run exited $rc: $out"
say "plan for $app: $(field status), about \$$(field estimated_monthly_usd)/month"

# 2. provision (a re-run of the job reuses what exists)
call provision_environment "$args}"
[ "$rc" -eq 0 ] || die "provision exited $rc: $out"
[ "$(field machine_state)" = "started" ] || die "machine not started: $out"
url=$(field url)
machine=$(field machine_id)
say "provisioned $app: machine $machine started, $url"
call provision_environment "$args}"
[ "$rc" -eq 0 ] || die "re-provision exited $rc: $out"
grep -q '"created": \[\]' <<<"$out" || die "the re-run created something: $out"
say "re-run of the job: $(field status), nothing new created (machine $(field machine_id))"

# 3. status check: exit code, then the JSON
call app_status "{\"app\":\"$app\"}"
[ "$rc" -eq 0 ] || die "app_status exited $rc: $out"
started=$(grep -c '"state": "started"' <<<"$out" || true)
[ "$started" -ge 1 ] || die "no started machine: $out"
say "status: $(field status), $started machine(s) started"
say "comment on the pull request: preview of '$branch' at $url"

# 4. the bot's scope: an app outside preview-* is refused
call app_status '{"app":"production-api"}'
kind=$(sed -nE 's/^    "kind": "([a-z_]+)",?$/\1/p' <<<"$out")
[ "$rc" -ne 0 ] && [ "$kind" = "refused" ] || die "an app outside preview-* was not refused: $out"
say "outside its scope (production-api): exit $rc, error kind $kind"

# 5. tear down: without confirm nothing happens; the plan's token (both calls share the
#    bot's FLY_MCP_CONFIRM_KEY) confirms exactly that plan
call teardown_environment "{\"app\":\"$app\"}"
kind=$(sed -nE 's/^    "kind": "([a-z_]+)",?$/\1/p' <<<"$out")
[ "$rc" -eq 1 ] && [ "$kind" = "confirmation_required" ] ||
  die "teardown without confirm did not ask for confirmation (exit $rc): $out"
say "teardown unconfirmed: exit $rc, error kind $kind (nothing changed)"
token=$(sed -nE 's/^      "confirm": "(cfm-[0-9]+-[0-9a-f]+)",?$/\1/p' <<<"$out")
[ -n "$token" ] || die "the plan gave no confirmation token: $out"
call teardown_environment "{\"app\":\"$app\",\"confirm\":\"$token\"}"
[ "$rc" -eq 0 ] || die "teardown exited $rc: $out"
[ "$(field app_deleted)" = "true" ] || die "app not deleted: $out"
removed=$(grep -c '"kind":' <<<"$out" || true)
say "torn down: $removed resource(s) removed, app deleted"

# 6. gone
call app_status "{\"app\":\"$app\"}"
[ "$rc" -eq 1 ] || die "app_status after teardown exited $rc: $out"
say "status after teardown: exit $rc (not found)"
say "audit log: $(wc -l <"$work/audit.jsonl" | tr -d ' ') write/destructive call(s) recorded"
say "done"
