#!/usr/bin/env bash
# Contract tests: the vendors' published OpenAPI specs run against
# `keyshift sandbox` with schemathesis.
#
#   scripts/contract-tests.sh                                  # binary at target/debug/keyshift
#   KEYSHIFT_BIN=/path/to/keyshift scripts/contract-tests.sh   # any other build
#
# Needs python3 with venv, and PyPI on the first run: the pinned schemathesis and its dependencies
# (scripts/contract-requirements.txt) go into target/contract-venv. The tests themselves talk only
# to the sandbox on 127.0.0.1. Exit status: 0 when every check passes, 1 when any fails, 2 when the
# setup fails. The console text, JUnit and NDJSON of each run go to target/contract-report/
# (CONTRACT_REPORT_DIR); CONTRACT_SEED and CONTRACT_MAX_EXAMPLES change the defaults below.
# Relative paths are taken from the repository root.
#
# Four schemathesis runs, deterministic (fixed seed, one worker, no example database or crash
# cache), against one sandbox (seed 1, unlimited rate):
#   workato-positive, bifrost-positive — schema-valid requests (examples, coverage, fuzzing,
#     stateful). Checks: not_a_server_error, status_code_conformance, content_type_conformance,
#     response_schema_conformance, response_headers_conformance, ignored_auth, use_after_free,
#     ensure_resource_availability, and filters_applied (scripts/contract_hooks.py: a list honours
#     the filters and page size its spec describes).
#   workato-negative, bifrost-negative — schema-violating requests (coverage, fuzzing). Checks:
#     negative_data_rejection (must be refused with a 4xx), not_a_server_error,
#     content_type_conformance, response_schema_conformance.
# status_code_conformance runs on valid requests only: the published specs list no 4xx for most
# operations, so no server could refuse an invalid request with a documented status there.
#
# Workato: only keyshift's operations (list/create API clients, list/create API keys, refresh a
# key's secret, list API collections). Bifrost: the whole keyshift subset, request-log reads
# (/api/logs, /api/logs/stats, /api/logs/dropped) included.
#
# Test data: the sandbox has no v2 clients and no secret we know, so the setup creates Workato
# clients and keys, and Bifrost virtual keys (one with every kind of limit, whose value
# authenticates the quota call) and profiles to delete, and makes inference calls (a standalone
# key, profile-managed keys, an unknown key) so that the request logs hold successes and errors
# of several keys. Path ids are drawn from these and the
# seeded inventory, and some body fields from values the sandbox accepts, so that requests get
# past 404s and referential checks to the answers worth checking.
#
# Accepted deviations: scripts/contract-exceptions.yaml, each naming the document that settles
# it, applied by scripts/contract_hooks.py. Nothing else is relaxed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

schemathesis_version=4.32.5
seed=${CONTRACT_SEED:-20251115}
max_examples=${CONTRACT_MAX_EXAMPLES:-40}
bin=${KEYSHIFT_BIN:-target/debug/keyshift}
specs=${KEYSHIFT_OPENAPI_DIR:-../shared/specs/openapi}
venv=target/contract-venv
reports=${CONTRACT_REPORT_DIR:-target/contract-report}

case $bin in /*) ;; *) bin=$root/$bin ;; esac
case $specs in /*) ;; *) specs=$root/$specs ;; esac
case $reports in /*) ;; *) reports=$root/$reports ;; esac
[ -x "$bin" ] || { echo "contract-tests: no keyshift binary at $bin (set KEYSHIFT_BIN)" >&2; exit 2; }
for f in workato-api-spec.yaml bifrost/keyshift-subset.yaml; do
  [ -f "$specs/$f" ] || { echo "contract-tests: missing spec $specs/$f" >&2; exit 2; }
done

# One run at a time per work tree: runs share the venv and the report folder.
mkdir -p target
exec 9>target/contract-tests.lock
if ! flock -n 9; then
  echo "contract-tests: waiting for another run in this work tree to finish" >&2
  flock -w 900 9 || { echo "contract-tests: gave up waiting for the other run" >&2; exit 2; }
fi

# --- schemathesis, pinned -------------------------------------------------------------------
req=scripts/contract-requirements.txt
stamp=$venv/.requirements
if [ ! -x "$venv/bin/schemathesis" ] || ! cmp -s "$req" "$stamp"; then
  echo "contract-tests: installing schemathesis $schemathesis_version into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
fi
"$venv/bin/schemathesis" --version | grep -qF "version $schemathesis_version" || {
  echo "contract-tests: $venv does not hold schemathesis $schemathesis_version" >&2; exit 2; }

# --- the sandbox ----------------------------------------------------------------------------
work=$(mktemp -d)
sandbox_pid=
cleanup() {
  if [ -n "$sandbox_pid" ] && kill -0 "$sandbox_pid" 2>/dev/null; then
    kill "$sandbox_pid" 2>/dev/null || true
    wait "$sandbox_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Started in its own empty directory so nothing it writes lands in the work tree; unlimited
# rate (--rate-scale 0) so the limiter never answers for the spec.
(cd "$work" && exec "$bin" sandbox --port 0 --seed 1 --rate-scale 0) >"$work/env" 2>"$work/sandbox.log" &
sandbox_pid=$!
# The settings end with a blank line.
for _ in $(seq 1 300); do
  grep -q '^$' "$work/env" && break
  kill -0 "$sandbox_pid" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q '^$' "$work/env"; then
  echo "contract-tests: the sandbox did not print its settings within 30 s; its log:" >&2
  cat "$work/sandbox.log" >&2
  exit 2
fi
set -a
# shellcheck disable=SC1091
. "$work/env"
set +a
echo "contract-tests: sandbox $KEYSHIFT_SANDBOX_URL ($("$bin" --version 2>/dev/null || echo keyshift))" >&2

# --- test data and the schemathesis config --------------------------------------------------
export CONTRACT_CONFIG=$work/schemathesis.toml CONTRACT_MAX_EXAMPLES=$max_examples
"$venv/bin/python" - <<'PY' || { echo "contract-tests: setting up test data failed" >&2; exit 2; }
import json, os, urllib.error, urllib.request

env = os.environ

def call(method, url, token=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)

max_examples = int(env["CONTRACT_MAX_EXAMPLES"])
wk, wk_token = env["KEYSHIFT_WORKATO_URL"], env["KEYSHIFT_WORKATO_TOKEN"]
bf, bf_token = env["KEYSHIFT_BIFROST_URL"], env["KEYSHIFT_BIFROST_TOKEN"]
seeded = call("GET", env["KEYSHIFT_SANDBOX_URL"] + "/_sandbox/state")
ws = seeded["workato"]["workspaces"][0]
collections = [c["id"] for c in ws["api_collections"]]
policies = [p["id"] for p in ws["api_policies"]]

# Workato: a token and an oauth2 v2 client, one key each. The key routes take either client;
# refresh_secret takes the oauth2 pair (an oauth2 key's answer differs most from a token key's).
clients, keys = [], []
for auth_type in ("token", "oauth2"):
    client = call("POST", wk + "/api/v2/api_clients", wk_token, {
        "name": f"contract-tests {auth_type} client", "auth_type": auth_type,
        "api_collection_ids": collections[:2], "api_policy_id": policies[0]})["data"]
    clients.append(client["id"])
    keys.append(call("POST", f"{wk}/api/v2/api_clients/{client['id']}/api_keys", wk_token,
                     {"name": f"contract-tests {auth_type} key", "active": True,
                      "ip_allow_list": ["203.0.113.0/24"]})["data"]["id"])

# Bifrost: a virtual key with every kind of limit (its value authenticates the quota call), a
# profile whose rate limits set only one of each pair, and virtual keys and profiles for DELETE
# (plus a profile users hold, which DELETE refuses with 409).
limits = {"budgets": [{"max_limit": 500, "reset_duration": "1M"}],
          "rate_limit": {"token_max_limit": 100000, "token_reset_duration": "1d",
                         "request_max_limit": 1000, "request_reset_duration": "1h"}}
quota_vk = call("POST", bf + "/api/governance/virtual-keys", bf_token, {
    "name": "contract-tests quota key", "description": "contract tests", "is_active": True,
    "provider_configs": [{"provider": "openai", "weight": 1, "allowed_models": ["gpt-4o"],
                          "key_ids": ["*"], **limits}],
    "mcp_configs": [{"mcp_client_name": "github", "tools_to_execute": ["list_repos"]}],
    "metadata": {"owner": "contract-tests"}, **limits})["virtual_key"]
call("POST", bf + "/api/governance/access-profiles", bf_token, {
    "name": "contract-tests one-sided limits", "tags": ["contract-tests"],
    "rate_limit": {"request_max_limit": 100, "request_reset_duration": "1h"},
    "provider_configs": [{"provider_name": "openai", "allowed_models": ["gpt-4o"],
                          "rate_limit": {"token_max_limit": 5000, "token_reset_duration": "1d"}}]})
doomed_vks = [call("POST", bf + "/api/governance/virtual-keys", bf_token,
                   {"name": f"contract-tests delete key {n}"})["virtual_key"]["id"] for n in range(3)]
doomed_profiles = [call("POST", bf + "/api/governance/access-profiles", bf_token,
                        {"name": f"contract-tests delete profile {n}"})["access_profile"]["id"]
                   for n in range(3)]

# Inference traffic for the request logs: the quota key, a few profile-managed keys, and an
# unknown key (a logged 401).
def infer(value):
    req = urllib.request.Request(bf + "/v1/chat/completions", method="POST",
                                 data=json.dumps({"model": "gpt-4o", "messages": [
                                     {"role": "user", "content": "contract tests"}]}).encode())
    req.add_header("x-bf-vk", value)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code

held_keys = call("GET", env["KEYSHIFT_SANDBOX_URL"] + "/_sandbox/consumer-credentials")["bifrost"]
logged_vks = [quota_vk["id"]]
for value in [quota_vk["value"]] * 3 + [k["value"] for k in held_keys[:5]]:
    infer(value)
logged_vks += [k["virtual_key_id"] for k in held_keys[:5]]
infer("sk-bf-contract-tests-unknown")

b = call("GET", env["KEYSHIFT_SANDBOX_URL"] + "/_sandbox/state")["bifrost"]
profiles = [p["id"] for p in b["access_profiles"] if p["id"] not in doomed_profiles]
held = sorted({u["parent_profile_id"] for u in b["user_access_profiles"] if u.get("parent_profile_id")})
users = sorted({u["user_id"] for u in b["user_access_profiles"]})
# Standalone keys, and one profile-managed key (those accept only name/description changes).
vks = [v["id"] for v in b["virtual_keys"]
       if v["id"] not in doomed_vks and not v.get("is_access_profile_managed")]
vks += [v["id"] for v in b["virtual_keys"] if v.get("is_access_profile_managed")][:1]
providers = sorted({k["provider"] for k in b["provider_keys"]})
mcp_names = sorted({m["config"]["name"] for m in b["mcp_clients"]})

q = json.dumps
toml = f"""
# Every failing case is reported, not only the first of each operation.
continue-on-failure = true
# Deterministic: no crash cache replaying earlier failures first, no example database.
[cache]
enabled = false
[generation]
database = "none"
# Random credentials only where the spec documents the refusal (Workato's 401s, the quota
# call's 401); elsewhere Bifrost documents no 401 and every request carries the real token.
with-security-parameters = false

[dictionaries.workato_collections]
values = {q(collections)}
[dictionaries.workato_clients]
values = {q(clients)}
[dictionaries.workato_policies]
values = {q(policies)}
[dictionaries.bifrost_profiles]
values = {q(profiles)}
[dictionaries.bifrost_users]
values = {q(users)}
[dictionaries.bifrost_vks]
values = {q(vks)}
[dictionaries.bifrost_doomed_profiles]
values = {q(doomed_profiles + held[:1])}
[dictionaries.bifrost_doomed_vks]
values = {q(doomed_vks)}
[dictionaries.bifrost_logged_vks]
values = {q(sorted(set(logged_vks)))}
[dictionaries.bifrost_log_statuses]
values = ["success", "error", "success,error"]
[dictionaries.bifrost_providers]
values = {q(providers)}
[dictionaries.bifrost_mcp_clients]
values = {q(mcp_names)}
[dictionaries.bifrost_durations]
values = ["1h", "1d", "1w", "1M", "1Y"]
[dictionaries.bifrost_amounts]
values = [0, 25, 100.5, 1000]

[[project]]
title = "Workato Platform API"
[project.auth.openapi.BearerAuth]
bearer = {q(wk_token)}
[project.generation]
with-security-parameters = true
[project.parameters]
"path.api_client_id" = {{ dictionary = "workato_clients" }}
"body.api_collection_ids[*]" = {{ dictionary = "workato_collections", probability = 0.9 }}
"body.api_policy_id" = {{ dictionary = "workato_policies", probability = 0.9 }}
# Most generated clients break a rule the schema cannot express (jwt needs jwt_method and
# jwt_secret, oidc exactly one of issuer / JWKS URL, ...): more tries so some are created.
[[project.operations]]
include-operation-id = "create_api_client"
generation = {{ max-examples = {max_examples * 4} }}
[[project.operations]]
include-operation-id = "refresh_api_key_secret"
parameters = {{ "path.api_client_id" = {clients[1]}, "path.api_key_id" = {keys[1]} }}

[[project]]
title = "Bifrost API (keyshift subset)"
[project.auth.openapi.ManagementBearerAuth]
bearer = {q(bf_token)}
[project.auth.openapi.VirtualKeyAuth]
api_key = {q(quota_vk['value'])}
[project.parameters]
"path.profile_id" = {{ dictionary = "bifrost_profiles" }}
"path.user_id" = {{ dictionary = "bifrost_users", probability = 0.9 }}
"path.vk_id" = {{ dictionary = "bifrost_vks", probability = 0.9 }}
# Request-log filters that match entries, so that filtered answers are not all empty.
"query.virtual_key_ids" = {{ dictionary = "bifrost_logged_vks", probability = 0.7 }}
"query.status" = {{ dictionary = "bifrost_log_statuses", probability = 0.7 }}
# Values the sandbox accepts, so that creates and updates also succeed, and their answers (budgets,
# rate limits, provider and MCP configs) get checked; 1 in 10 stays free.
"body.provider_configs[*].provider" = {{ dictionary = "bifrost_providers", probability = 0.9 }}
"body.provider_configs[*].provider_name" = {{ dictionary = "bifrost_providers", probability = 0.9 }}
"body.mcp_configs[*].mcp_client_name" = {{ dictionary = "bifrost_mcp_clients", probability = 0.9 }}
"body.budgets[*].reset_duration" = {{ dictionary = "bifrost_durations", probability = 0.9 }}
"body.budgets[*].max_limit" = {{ dictionary = "bifrost_amounts", probability = 0.9 }}
"body.provider_configs[*].budgets[*].reset_duration" = {{ dictionary = "bifrost_durations", probability = 0.9 }}
"body.provider_configs[*].budgets[*].max_limit" = {{ dictionary = "bifrost_amounts", probability = 0.9 }}
"body.rate_limit.token_reset_duration" = {{ dictionary = "bifrost_durations", probability = 0.9 }}
"body.rate_limit.request_reset_duration" = {{ dictionary = "bifrost_durations", probability = 0.9 }}
"body.provider_configs[*].rate_limit.token_reset_duration" = {{ dictionary = "bifrost_durations", probability = 0.9 }}
"body.provider_configs[*].rate_limit.request_reset_duration" = {{ dictionary = "bifrost_durations", probability = 0.9 }}
[[project.operations]]
include-operation-id = ["createVirtualKey", "createAccessProfile"]
generation = {{ max-examples = {max_examples * 4} }}
[[project.operations]]
include-operation-id = "getVirtualKeyQuota"
generation = {{ with-security-parameters = true }}
[[project.operations]]
include-operation-id = "deleteAccessProfile"
parameters = {{ "path.profile_id" = {{ dictionary = "bifrost_doomed_profiles" }} }}
[[project.operations]]
include-operation-id = "deleteVirtualKey"
parameters = {{ "path.vk_id" = {{ dictionary = "bifrost_doomed_vks" }} }}
"""
with open(env["CONTRACT_CONFIG"], "w") as f:
    f.write(toml)
PY

# --- the runs -------------------------------------------------------------------------------
runs=(workato-positive workato-negative bifrost-positive bifrost-negative)
for name in "${runs[@]}"; do rm -rf "${reports:?}/$name" "$reports/$name.txt"; done
mkdir -p "$reports"
positive_checks=not_a_server_error,status_code_conformance,content_type_conformance
positive_checks+=,response_schema_conformance,response_headers_conformance,ignored_auth
positive_checks+=,use_after_free,ensure_resource_availability,filters_applied
negative_checks=not_a_server_error,negative_data_rejection,content_type_conformance
negative_checks+=,response_schema_conformance

failed=()
run() { # name spec base-url mode checks phases [filters...]
  local name=$1 spec=$2 url=$3 mode=$4 checks=$5 phases=$6
  shift 6
  echo "contract-tests: $name" >&2
  local rc=0
  # From the scratch directory: hypothesis keeps a .hypothesis/ folder in the working directory.
  (cd "$work" && SCHEMATHESIS_HOOKS=$root/scripts/contract_hooks.py exec timeout 600 \
    "$root/$venv/bin/schemathesis" --config-file "$CONTRACT_CONFIG" --no-color run "$spec" \
    --url "$url" --mode "$mode" --checks "$checks" --phases "$phases" \
    --seed "$seed" --max-examples "$max_examples" --workers 1 --request-timeout 10 \
    --output-sanitize false \
    --report junit,ndjson --report-dir "$reports/$name" "$@") \
    >"$reports/$name.txt" 2>&1 || rc=$?
  sed -n '/^=* SUMMARY =*$/,$p' "$reports/$name.txt" >&2
  [ "$rc" -eq 0 ] || failed+=("$name")
}

workato_ops=(--include-operation-id list_api_clients --include-operation-id create_api_client
  --include-operation-id list_api_keys --include-operation-id create_api_key
  --include-operation-id refresh_api_key_secret --include-operation-id list_api_collections)
workato=$specs/workato-api-spec.yaml
bifrost=$specs/bifrost/keyshift-subset.yaml

all_phases=examples,coverage,fuzzing,stateful
run workato-positive "$workato" "$KEYSHIFT_WORKATO_URL" positive "$positive_checks" "$all_phases" "${workato_ops[@]}"
run workato-negative "$workato" "$KEYSHIFT_WORKATO_URL" negative "$negative_checks" coverage,fuzzing "${workato_ops[@]}"
run bifrost-positive "$bifrost" "$KEYSHIFT_BIFROST_URL" positive "$positive_checks" "$all_phases"
run bifrost-negative "$bifrost" "$KEYSHIFT_BIFROST_URL" negative "$negative_checks" coverage,fuzzing

if [ "${#failed[@]}" -gt 0 ]; then
  echo "contract-tests: FAILED: ${failed[*]} (details in $reports/<run>.txt)" >&2
  exit 1
fi
echo "contract-tests: all runs passed" >&2
