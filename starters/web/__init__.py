"""`pipeworks serve`: the HTTP API and the dashboard. Names no pipeline: pipelines add
their routes and pages through their registration (`pipeworks.registry.WebParts`)."""
