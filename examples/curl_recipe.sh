#!/usr/bin/env bash
# The per-user dev environment recipe from Fly's Machines API guide, request for
# request, against the simulator: only the hosts change.
#
#   fly-machines-mcp sim --scenario empty --time-scale 0.01 &
#   examples/curl_recipe.sh
#
# Ends by waiting until the machine is `started`.
set -euo pipefail

export ORG="${ORG:-personal}"
export FLY_API_TOKEN="${FLY_API_TOKEN:-FlyV1 fm2_IJPECAAA-simulated}"
export FLY_API_HOSTNAME="${FLY_API_HOSTNAME:-http://127.0.0.1:4280}"
export FLY_API_BASE_URL="${FLY_API_BASE_URL:-$FLY_API_HOSTNAME}"
export APP_NAME="${APP_NAME:-mcp-demo-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')}"

curl -sS -i -X POST \
  -H "Authorization: Bearer ${FLY_API_TOKEN}" \
  -H "Content-Type: application/json" \
  "${FLY_API_HOSTNAME}/v1/apps" \
  -d "{ \
      \"app_name\": \"${APP_NAME}\", \
      \"org_slug\": \"${ORG}\" \
    }"
echo

# A new app can answer 404 for a moment: wait until it answers, as fly-go's
# WaitForApp does after every create (flaps/flaps_apps.go).
for _ in $(seq 1 100); do
  code=$(curl -sS -o /dev/null -w '%{http_code}' \
    -H "Authorization: Bearer ${FLY_API_TOKEN}" \
    "${FLY_API_HOSTNAME}/v1/apps/${APP_NAME}")
  [ "$code" = 200 ] && break
  sleep 0.1
done

curl -sS -i -X POST \
  -H "Authorization: Bearer ${FLY_API_TOKEN}" \
  -H "Content-Type: application/json" \
  "${FLY_API_BASE_URL}/graphql" \
  -d @- <<EOF2
    {
      "query": "mutation(\$input: AllocateIPAddressInput!) { allocateIpAddress(input: \$input) { app { sharedIpAddress } } }",
      "variables": {
        "input": {
          "appId": "${APP_NAME}",
          "type": "shared_v4",
          "region": ""
        }
      }
    }
EOF2
echo

curl -sS -i -X POST \
  -H "Authorization: Bearer ${FLY_API_TOKEN}" \
  -H "Content-Type: application/json" \
  "${FLY_API_BASE_URL}/graphql" \
  -d @- <<EOF2
    {
      "query": "mutation(\$input: AllocateIPAddressInput!) { allocateIpAddress(input: \$input) { ipAddress { id address type region createdAt } } }",
      "variables": {
        "input": {
          "appId": "${APP_NAME}",
          "type": "v6",
          "region": ""
        }
      }
    }
EOF2
echo

curl -sS -i -X POST \
  -H "Authorization: Bearer ${FLY_API_TOKEN}" \
  -H "Content-Type: application/json" \
  "${FLY_API_HOSTNAME}/v1/apps/${APP_NAME}/volumes" \
  -d '{
    "name": "data",
    "region": "iad",
    "size_gb": 1
  }'
echo

machine=$(curl -sS -X POST \
  -H "Authorization: Bearer ${FLY_API_TOKEN}" \
  -H "Content-Type: application/json" \
  "${FLY_API_HOSTNAME}/v1/apps/${APP_NAME}/machines" \
  -d '{
    "region": "iad",
    "config": {
      "image": "flyio/mcp:latest",
      "init": {
        "cmd": [
          "npx",
          "-f",
          "@modelcontextprotocol/server-filesystem",
          "/data/"
        ]
      },
      "guest": {
        "cpu_kind": "shared",
        "cpus": 1,
        "memory_mb": 1024
      },
      "mounts": [
        {
          "volume": "data",
          "path": "/data",
          "extend_threshold_percent": 80,
          "add_size_gb": 1,
          "size_gb_limit": 100
        }
      ],
      "services": [
        {
          "protocol": "tcp",
          "internal_port": 8080,
          "autostop": "stop",
          "autostart": true,
          "ports": [
            {
              "port": 80,
              "handlers": [
                "http"
              ],
              "force_https": true
            },
            {
              "port": 443,
              "handlers": [
                "http",
                "tls"
              ]
            }
          ]
        }
      ]
    }
  }')
echo "$machine"
id=$(printf '%s' "$machine" | grep -oE '"id":"[0-9a-f]{14}"' | head -n1 | cut -d'"' -f4)
[ -n "$id" ] || { echo "machine create failed" >&2; exit 1; }

curl -sS --fail-with-body \
  -H "Authorization: Bearer ${FLY_API_TOKEN}" \
  "${FLY_API_HOSTNAME}/v1/apps/${APP_NAME}/machines/${id}/wait?state=started&timeout=60"
echo
echo "machine ${id} of ${APP_NAME} is started"
