# Placeholder: the real multi-stage image (module built against the runtime image's exact nginx
# version, CRS, default honeypot config) is tracked as its own issue. This builds the module and
# its vendored nginx only, so the file is not a lie.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        libclang-dev libpcre2-dev libssl-dev zlib1g-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --locked --release --lib
