"""One registration per pipeline: a `Pipeline` value each, found by the kernel through
the `pipeworks.pipelines` entry points in pyproject.toml."""
