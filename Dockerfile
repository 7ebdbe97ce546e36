# syntax=docker/dockerfile:1
# edge-gateway image: `docker build -t edge-gateway .`
#
# Debian (glibc) base: bcrypt 6 loads its prebuilt glibc binary through node-gyp-build, so no
# compiler is needed in either stage; the runtime stage proves it loads before the image is done.
ARG NODE_IMAGE=node:24-bookworm-slim

# --- build: the same npm scripts CI runs (npm ci, npm run build) ---
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- runtime: production dependencies and the compiled JavaScript only ---
FROM ${NODE_IMAGE} AS runtime
# tini is PID 1: it forwards SIGTERM to node and reaps zombies.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    GATEWAY_ENV_FILE=/etc/edge-gateway/.env
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && node -e "require('bcrypt').hashSync('image build check', 4)"
COPY --from=build /app/dist ./dist
# The env file is mounted read-only at /etc/edge-gateway (a directory, so edits are seen live).
RUN mkdir -p /etc/edge-gateway
USER node
EXPOSE 4317 4318 9090 8428
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9901/ready', { signal: AbortSignal.timeout(2000) }).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "dist/cli.js"]
CMD ["serve"]
