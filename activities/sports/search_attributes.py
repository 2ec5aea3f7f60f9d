"""The sports pipeline's search attributes, besides the kernel's `Pipeline` and `Stage`:
`temporal workflow list --query "OrgKind='association' AND OrgId='A1'"`."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

ORG_KIND = SearchAttributeKey.for_keyword("OrgKind")
ORG_ID = SearchAttributeKey.for_keyword("OrgId")

ALL = (ORG_KIND, ORG_ID)
