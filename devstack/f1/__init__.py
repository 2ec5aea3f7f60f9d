"""The F1 pipeline's demo upstream: a server of contracts/f1-api.md (an OpenF1 subset)."""
