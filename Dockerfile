# syntax=docker/dockerfile:1
# keygate container image: the ext_authz gRPC server (CMD) and the keygate-admin CLI
# (`node bin/keygate-admin.js ...`, used by the compose keygate-init job).
#
#   docker build -t keygate .
#   docker run --rm -e REDIS_URL=redis://redis:6379 -p 9191:9191 -p 9464:9464 keygate
#
# Two stages: the build stage has the dev dependencies (TypeScript) and compiles; the runtime
# stage gets only the compiled output, the protos and the production node_modules.

ARG NODE_IMAGE=node:20-bookworm-slim

# ─────────────────────────────── build ───────────────────────────────
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

# Dependencies first, so this layer is reused until package*.json change.
# --ignore-scripts: package.json's `prepare` would run the build before the sources are here,
# and no dependency needs an install script.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts

COPY tsconfig.json ./
COPY src ./src
COPY protos ./protos
COPY bin ./bin
RUN npm run build \
 # tsc emits only JavaScript: copy the other files under src/ (the Redis Lua scripts) next to
 # the compiled code, where it looks first.
 && (cd src && find . -type f ! -name '*.ts' -exec cp --parents {} ../dist/src/ \;) \
 && npm prune --omit=dev --ignore-scripts

# ────────────────────────────── runtime ──────────────────────────────
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app

# Owned by root and read-only for the `node` user the process runs as.
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/protos ./protos
COPY --from=build /app/bin ./bin

# The official node images ship an unprivileged `node` user (uid 1000).
USER node

# 9191: ext_authz v3 gRPC (and grpc.health.v1) — KEYGATE_GRPC_PORT
# 9464: HTTP /metrics, /healthz, /readyz — KEYGATE_HTTP_PORT
EXPOSE 9191 9464

# The slim image has no curl: ask Node. /healthz = the process is up (liveness); Envoy's gRPC
# health check and /readyz cover "can serve Checks".
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "const r = require('http').get('http://127.0.0.1:' + (process.env.KEYGATE_HTTP_PORT || 9464) + '/healthz', (res) => process.exit(res.statusCode === 200 ? 0 : 1)); r.on('error', () => process.exit(1)); r.setTimeout(2000, () => { r.destroy(); process.exit(1); });"]

# Node is PID 1: keygate handles SIGTERM itself (NOT_SERVING, drain in-flight Checks, exit).
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/main.js"]
