# The GraphQL server only: Node 20, onnxruntime-node on CPU, no Python. Model bundles are mounted at /bundles.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json prisma.config.ts ./
COPY prisma ./prisma
COPY scripts/prisma-generate.mjs ./scripts/
COPY src ./src
RUN npm run prisma:generate && npm run build

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PORT=4000 LLM2REC_DATA_DIR=/data LLM2REC_BUNDLE=/bundles/quick
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY --from=build /app/dist ./dist
COPY prisma ./prisma
EXPOSE 4000
VOLUME ["/data", "/bundles"]
CMD ["node", "dist/src/cli/serve.js"]
