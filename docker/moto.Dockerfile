# moto's DynamoDB-compatible server (PyPI moto[server]) for docker/compose.dynamodb.yaml, run
# through scripts/dynamodb-server.py as scripts/services runs it: one request at a time.
ARG MCP_PYTHON_IMAGE=python:3.12-slim
FROM ${MCP_PYTHON_IMAGE}
ARG MOTO_SPEC="moto[server]>=5,<6"
RUN pip install --no-cache-dir --disable-pip-version-check "${MOTO_SPEC}" \
    && useradd --system moto
COPY scripts/dynamodb-server.py /usr/local/bin/dynamodb-server.py
USER moto
EXPOSE 5000
CMD ["python", "/usr/local/bin/dynamodb-server.py", "-H", "0.0.0.0", "-p", "5000"]
