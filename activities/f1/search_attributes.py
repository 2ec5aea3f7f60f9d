"""The F1 pipeline's search attributes, besides the kernel's `Pipeline` and `Stage`:
`temporal workflow list --query "F1Year='2024' AND F1Session='9472'"`."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

F1_YEAR = SearchAttributeKey.for_keyword("F1Year")
F1_SESSION = SearchAttributeKey.for_keyword("F1Session")

ALL = (F1_YEAR, F1_SESSION)
