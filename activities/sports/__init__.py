"""The sports sync pipeline: competitions -> teams -> games of an organisation."""

# Defined once: progress documents, `pipeline.runs`, metrics and the `Pipeline` search
# attribute all use these.
PIPELINE = "sports_sync"
BATCH_PIPELINE = "sports_sync_batch"
