# One recipe for every Meridian service and emulator. SERVICE is the package folder to run,
# e.g. services/gateway or emulators/omf. The base image comes from a build arg so that machines
# without a registry can pass a local stand-in (CI passes $MERIDIAN_NODE_IMAGE).
#
# An image holds only what runs, under the repository's own paths in /app: the package's package.json and dist,
# the same of each workspace library it imports, the third-party packages its production dependencies reach, and
# the health check. scripts/runtime-files.mjs picks them, the same way for both targets; no tests, sources, test
# keys, emulators (in a service image) or devDependencies. Everything is root's and read-only to the user that runs.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS base
WORKDIR /app
ENV NODE_ENV=production
# Ready = /readyz answers 200 (services) or HEALTHCHECK_URL does (emulators); node is the only tool we can count on.
HEALTHCHECK --interval=5s --timeout=3s --start-period=15s --retries=5 CMD ["node", "/app/scripts/healthcheck.mjs"]

# Target for tests and registry-less machines: JavaScript built on the host with `npm install && npm run build`.
# The host's node_modules holds the devDependencies too; runtime-files takes only what production dependencies reach,
# so no registry is needed to leave them out. These stages come first so `--target prebuilt` builds nothing else.
# The classic builder (no BuildKit) also runs them for `--target runtime`: on a tree that was never built they copy
# nothing (--if-built) instead of failing that build.
FROM base AS prebuilt-files
COPY . /repo
ARG SERVICE=services/gateway
# The gateway image also holds the meridian CLI (cli/: its dist, bin and what they import), so that an operator can run
# `docker compose exec gateway meridian status`; the libraries both use are the same files. And the built console
# (console/dist: static files the gateway serves at /, nothing of it runs in node), where the gateway looks for it.
RUN node /repo/scripts/runtime-files.mjs "${SERVICE}" /out --if-built \
  && if [ "${SERVICE}" = services/gateway ] && [ -e /out/services ]; then \
       node /repo/scripts/runtime-files.mjs cli /out-cli \
       && cp -a --remove-destination /out-cli/. /out/ && mkdir -p /out/cli/bin && cp /repo/cli/bin/meridian.js /out/cli/bin/ \
       && mkdir -p /out/console && cp -a /repo/console/dist /out/console/dist; \
     fi

FROM base AS prebuilt
ARG SERVICE=services/gateway
ENV MERIDIAN_SERVICE=${SERVICE}
# A young generation of at most 2 MiB per semi-space instead of V8's default of up to 16 MiB: the start (module loading,
# config, registries) grows it to its maximum and it stays that size while idle, so each service held about 16-22 MiB
# more RSS for nothing (tests/bench `npm run bench:idle`: gateway 110 -> 94 MiB idle). The price is CPU under load:
# scavenges run up to 8x as often and short-lived objects that live across a few of them (a batch in flight) are
# promoted and collected by the costlier old-generation GC. Measured (BENCH_SERVICE_NODE_OPTIONS=--max-semi-space-size=16
# against 2, alternating, on a busy 2-core machine): idigi-listener at full load 32.1 / 36.2 CPU µs per event (zlib)
# against 27.2 / 28.6 with 16, i.e. 15-25 % more; the gateway's Connect JSON Publish within the noise (39.5 / 27.7
# against 34.1 / 29.3). Where CPU matters more than ~16 MiB per process, set NODE_OPTIONS empty. Set in the final
# stages only (not the build, where tsc would pay it), as NODE_OPTIONS so that an operator can replace it (compose and
# k8s run this image's CMD and set no NODE_OPTIONS). tests/bench's processes.ts SERVICE_NODE_OPTIONS mirrors it.
ENV NODE_OPTIONS=--max-semi-space-size=2
COPY scripts/healthcheck.mjs /app/scripts/healthcheck.mjs
COPY --from=prebuilt-files /out /app
RUN if [ -e /app/cli/bin/meridian.js ]; then ln -s /app/cli/bin/meridian.js /usr/local/bin/meridian; fi
USER 1000:1000
CMD ["sh", "-c", "exec node /app/${MERIDIAN_SERVICE}/dist/main.js"]

# Default target: built from source (needs the npm registry). The host's install and build output in the context
# are dropped first, so the image never holds what the host had. NODE_ENV=production would make npm leave out the
# devDependencies the build needs (turbo, tsc, buf): --include=dev. npm install, not ci: see .ci/run.
FROM base AS build
WORKDIR /repo
COPY . .
RUN rm -rf node_modules */*/node_modules */*/dist \
  && npm install --include=dev --no-audit --no-fund \
  && npm run build
ARG SERVICE=services/gateway
RUN node scripts/runtime-files.mjs "${SERVICE}" /out \
  && if [ "${SERVICE}" = services/gateway ]; then \
       node scripts/runtime-files.mjs cli /out-cli \
       && cp -a --remove-destination /out-cli/. /out/ && mkdir -p /out/cli/bin && cp cli/bin/meridian.js /out/cli/bin/ \
       && mkdir -p /out/console && cp -a console/dist /out/console/dist; \
     fi

FROM base AS runtime
ARG SERVICE=services/gateway
ENV MERIDIAN_SERVICE=${SERVICE}
# Same Node options as the prebuilt target (see there).
ENV NODE_OPTIONS=--max-semi-space-size=2
COPY scripts/healthcheck.mjs /app/scripts/healthcheck.mjs
COPY --from=build /out /app
RUN if [ -e /app/cli/bin/meridian.js ]; then ln -s /app/cli/bin/meridian.js /usr/local/bin/meridian; fi
USER 1000:1000
CMD ["sh", "-c", "exec node /app/${MERIDIAN_SERVICE}/dist/main.js"]
