# homeport's own image, for deploy/ (kubectl apply -k deploy/).
FROM python:3.11-slim
# git stores pushed packs (index-pack) and reads files for builds (cat-file).
RUN apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY homeport ./homeport
RUN pip install --no-cache-dir . && rm -rf /src
WORKDIR /
ENTRYPOINT ["homeport"]
CMD ["up"]
