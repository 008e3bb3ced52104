# driftd's container image: the daemon and its Go plugins as static
# binaries, on an empty base, run as a non-root user. The socket directory
# /run/driftd and the state directory /var/lib/driftd are volumes; the config
# is /etc/driftd/driftd.hcl (deploy/driftd.hcl by default; mount your own).
#
#   docker build -t driftd .
#   docker run -v driftd-sock:/run/driftd -v driftd-state:/var/lib/driftd driftd
#
# The image's file tree is what `make install` lays out (tested in e2e).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 make install DESTDIR=/out PREFIX=/usr/local VERSION=$VERSION \
 && install -d -m 0755 /out/etc/driftd \
 && install -m 0644 /out/usr/local/share/driftd/driftd.hcl /out/etc/driftd/driftd.hcl \
 && install -d -m 0750 /out/run/driftd /out/var/lib/driftd

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/ /
COPY --from=build --chown=65532:65532 /out/run/driftd /run/driftd
COPY --from=build --chown=65532:65532 /out/var/lib/driftd /var/lib/driftd
USER 65532:65532
VOLUME ["/run/driftd", "/var/lib/driftd"]
ENTRYPOINT ["/usr/local/bin/driftd"]
CMD ["agent", "-config", "/etc/driftd/driftd.hcl"]
