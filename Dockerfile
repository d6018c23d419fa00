# One recipe for every Meridian service and emulator. SERVICE is the package folder to run,
# e.g. services/gateway or emulators/omf. The base image comes from a build arg so that machines
# without a registry can pass a local stand-in (CI passes $MERIDIAN_NODE_IMAGE).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS base
WORKDIR /app
ENV NODE_ENV=production
# Ready = /readyz answers 200 (services) or HEALTHCHECK_URL does (emulators); node is the only tool we can count on.
HEALTHCHECK --interval=5s --timeout=3s --start-period=15s --retries=5 CMD ["node", "/app/scripts/healthcheck.mjs"]

# Target for tests and registry-less machines: JavaScript built on the host with
# `npm install && npm run build` is copied as is. It comes first so `--target prebuilt` builds nothing else.
FROM base AS prebuilt
ARG SERVICE=services/gateway
ENV MERIDIAN_SERVICE=${SERVICE}
COPY . .
USER 1000:1000
CMD ["sh", "-c", "exec node /app/${MERIDIAN_SERVICE}/dist/main.js"]

# Default target: built from source (needs the npm registry).
FROM base AS build
COPY . .
RUN rm -rf node_modules && npm install --no-audit --no-fund && npm run build && npm prune --omit=dev

FROM base AS runtime
ARG SERVICE=services/gateway
ENV MERIDIAN_SERVICE=${SERVICE}
COPY --from=build /app /app
USER 1000:1000
CMD ["sh", "-c", "exec node /app/${MERIDIAN_SERVICE}/dist/main.js"]
