"""Custom search attributes: what a user filters runs by in the Web UI or with
`temporal workflow list --query "Pipeline='...' AND Stage='running'"`.

The kernel's are `Pipeline` and `Stage`; a pipeline declares its own in its
registration. They must be registered in the namespace before a workflow sets them
(`pipeworks dev up` does it; on a real cluster: `temporal operator search-attribute
create`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from temporalio.common import SearchAttributeKey

PIPELINE = SearchAttributeKey.for_keyword("Pipeline")
STAGE = SearchAttributeKey.for_keyword("Stage")

KERNEL = (PIPELINE, STAGE)


def registration(keys: Iterable[SearchAttributeKey[Any]]) -> dict[str, str]:
    """As `temporal operator search-attribute create --type` spells the types."""
    return {key.name: "Keyword" for key in keys}
