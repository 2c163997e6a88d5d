# fly-machines-mcp as a remote MCP server (Streamable HTTP), e.g. on Fly itself.
# Build:  docker build -t fly-machines-mcp .
# Run:    docker run -p 8080:8080 -e FLY_API_TOKEN=... -v $PWD/keys:/run/secrets/mcp-keys:ro fly-machines-mcp

# --- build: a static (musl) release binary -------------------------------------------
FROM rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin fly-machines-mcp \
 && cp target/release/fly-machines-mcp /fly-machines-mcp

# --- run: no shell, no package manager, non-root --------------------------------------
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /fly-machines-mcp /usr/local/bin/fly-machines-mcp
ENV FLY_MCP_HTTP=0.0.0.0:8080 \
    FLY_MCP_AUTH_KEYS=/run/secrets/mcp-keys \
    RUST_LOG=info
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/fly-machines-mcp"]
CMD ["serve"]
