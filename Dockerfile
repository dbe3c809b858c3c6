# syntax=docker/dockerfile:1
# Lumiku backend: compiled once with the dev dependencies, run as plain JavaScript with the
# production dependencies only (no tsx, no esbuild, no TypeScript at run time).
ARG NODE_IMAGE=node:24-bookworm-slim

# 1. Compile TypeScript to dist/ (npm run build).
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# 2. Production dependencies only (the npm-bundled ffmpeg, an optional dependency, is left out:
#    the runtime uses Debian's).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund && npm cache clean --force

# 3. Runtime: Debian's ffmpeg, tini as PID 1 (it forwards SIGTERM to node and reaps children),
#    the unprivileged `node` user of the base image.
FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
  && apt-get install -y --no-install-recommends ffmpeg tini \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    PORT=3000 \
    STORAGE_DIR=/data/storage \
    FFMPEG_BUNDLED=false
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
RUN mkdir -p /data/storage && chown node:node /data/storage
VOLUME ["/data/storage"]
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health/liveness').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/main.js"]
