# syntax=docker/dockerfile:1
#
# tenantdrift container image (STYLE.md rule 26): a static, CGO-free binary
# on distroless, running as a non-root user.
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t tenantdrift .
#
# scripts/check-dockerfile.sh (run by CI, which has no Docker engine) reads
# this file and runs its `go build` line as a plain command; keep that build
# on one RUN instruction.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src

# Modules first, so editing code does not invalidate the download layer.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/tenantdrift ./cmd/tenantdrift

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="tenantdrift" \
      org.opencontainers.image.description="Finds drift in a database-per-tenant registry" \
      org.opencontainers.image.source="https://github.com/tenantdrift/tenantdrift" \
      org.opencontainers.image.version="${VERSION}"

COPY --from=build /out/tenantdrift /usr/local/bin/tenantdrift
COPY config/tenantdrift.example.yaml /etc/tenantdrift/tenantdrift.yaml
ENV TENANTDRIFT_CONFIG=/etc/tenantdrift/tenantdrift.yaml

USER 65532:65532
# tenantdrift serve's default listen port
EXPOSE 9788

ENTRYPOINT ["/usr/local/bin/tenantdrift"]
# The daemon by default (/metrics, /healthz, /readyz on :9788); pass
# arguments to run something else, e.g. `docker run IMAGE audit --format json`.
CMD ["serve"]
