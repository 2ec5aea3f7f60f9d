"""The F1 pipeline: OpenF1-compatible timing data of every session, validated,
incremental and live, with race analytics."""

# Defined once: progress documents, `pipeline.runs`, metrics and the `Pipeline` search
# attribute all use it.
PIPELINE = "f1"
