# homeport's own image, for deploy/ (kubectl apply -k deploy/).
FROM python:3.11-slim
# git stores pushed packs (index-pack), reads files for builds (cat-file) and fetches webhook
# commits; OpenSSH's client fetches over SSH with deploy keys.
RUN apt-get update && apt-get install -y --no-install-recommends git openssh-client \
    && rm -rf /var/lib/apt/lists/*
# Builds run `docker buildx build` against the host's engine (the socket is mounted): the
# docker CLI and Docker's buildx plugin, from Docker's own images (bookworm packages neither
# buildx nor a CLI without the daemon).
COPY --from=docker:28-cli /usr/local/bin/docker /usr/local/bin/docker
COPY --from=docker/buildx-bin:0.38.2 /buildx /usr/local/lib/docker/cli-plugins/docker-buildx
WORKDIR /src
COPY pyproject.toml README.md ./
COPY homeport ./homeport
RUN pip install --no-cache-dir . && rm -rf /src
WORKDIR /
ENTRYPOINT ["homeport"]
CMD ["up"]
