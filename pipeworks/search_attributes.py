"""Custom search attributes: what a user filters runs by in the Web UI or with
`temporal workflow list --query "OrgKind='association' AND OrgId='A1'"`.

They must be registered in the namespace before a workflow sets them (`pipeworks dev
up` does it; on a real cluster: `temporal operator search-attribute create`).
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

PIPELINE = SearchAttributeKey.for_keyword("Pipeline")
ORG_KIND = SearchAttributeKey.for_keyword("OrgKind")
ORG_ID = SearchAttributeKey.for_keyword("OrgId")
STAGE = SearchAttributeKey.for_keyword("Stage")

ALL = (PIPELINE, ORG_KIND, ORG_ID, STAGE)
BY_NAME = {key.name: key for key in ALL}
# As `temporal operator search-attribute create --type` spells the types.
REGISTRATION = {key.name: "Keyword" for key in ALL}
