# homeport's own image, for deploy/ (kubectl apply -k deploy/).
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY homeport ./homeport
RUN pip install --no-cache-dir . && rm -rf /src
WORKDIR /
ENTRYPOINT ["homeport"]
CMD ["up"]
