# The GraphQL server only: Node 20, onnxruntime-node on CPU, no Python. Model bundles are mounted at /bundles (the
# model registry; LLM2REC_BUNDLE is the one served at first start). `node scripts/image-config.mjs` prints what the
# final stage runs with (command, environment, user, health check); test/deploy/image.test.ts checks it.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json prisma.config.ts ./
COPY prisma ./prisma
COPY scripts/prisma-generate.mjs ./scripts/
COPY src ./src
RUN npm run prisma:generate && npm run build

# Production dependencies only: the Prisma CLI (about 100 MB with Studio) is a devDependency, the generated client
# and its runtime are all the server needs (migrations are applied by the app itself from prisma/migrations).
FROM node:20-bookworm-slim AS runtime-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PORT=4000 LLM2REC_DATA_DIR=/data LLM2REC_MODEL_REGISTRY=/bundles LLM2REC_BUNDLE=/bundles/quick
COPY --from=runtime-deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
COPY prisma ./prisma
# Not root: the image's own `node` user, owning only the data directory.
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 4000
VOLUME ["/data", "/bundles"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/src/cli/serve.js"]
