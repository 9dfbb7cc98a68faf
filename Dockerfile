# homeport's own image, for deploy/ (kubectl apply -k deploy/).
# The base and the images the docker CLI and buildx are copied from are build arguments, so
# a machine that cannot pull them can build from its own (tests/incluster/images does).
ARG BASE=python:3.11-slim
ARG DOCKER_CLI=docker:28-cli
ARG BUILDX=docker/buildx-bin:0.38.2
FROM ${DOCKER_CLI} AS docker-cli
FROM ${BUILDX} AS buildx
FROM ${BASE}
# git stores pushed packs (index-pack), reads files for builds (cat-file) and fetches webhook
# commits; OpenSSH's client fetches over SSH with deploy keys.
RUN apt-get update && apt-get install -y --no-install-recommends git openssh-client \
    && rm -rf /var/lib/apt/lists/*
# Builds run `docker buildx build` against the host's engine (the socket is mounted): the
# docker CLI and Docker's buildx plugin, from Docker's own images (bookworm packages neither
# buildx nor a CLI without the daemon).
COPY --from=docker-cli /usr/local/bin/docker /usr/local/bin/docker
COPY --from=buildx /buildx /usr/local/lib/docker/cli-plugins/docker-buildx
WORKDIR /src
COPY pyproject.toml README.md ./
COPY homeport ./homeport
RUN pip install --no-cache-dir . && rm -rf /src
WORKDIR /
ENTRYPOINT ["homeport"]
CMD ["up"]
