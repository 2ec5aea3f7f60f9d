"""The example pipeline's activity: the kernel's land-and-stage, with its stager."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt, StrictStr, ValidationError
from temporalio import activity

from pipeworks.db import Connection
from pipeworks.merge import TableSpec
from pipeworks.pagination import JsonArrayWindows, Paginator
from pipeworks.staging import StageOutcome, Stager, Verdict, array_items
from pipeworks.streams import StreamActivities, StreamSpec, SyncOutcome, SyncRequest
from pipeworks.validation import describe

READINGS = TableSpec("example.readings", ("station", "hour"), ("station", "hour", "value"))


class Reading(BaseModel):
    model_config = ConfigDict(extra="ignore")
    station: StrictStr
    hour: StrictInt
    value: StrictFloat | StrictInt


class ReadingStager:
    entity = "readings"
    spec = READINGS
    scope_per_row = False
    label_index: int | None = None
    items_of = staticmethod(array_items)

    def __init__(self, station: str) -> None:
        self.station = station

    async def prepare(self, conn: Connection) -> None:
        return None


    async def finish(self, conn: Connection, outcome: StageOutcome) -> None:

        return None

    def judge(self, item: Any) -> Verdict:
        try:
            r = Reading.model_validate(item)
        except ValidationError as err:
            return Verdict(invalid_reason=describe(err))
        return Verdict((r.station, r.hour), (r.station, r.hour, float(r.value)))

    def judge_page(self, body: bytes) -> list[Verdict] | None:
        return None  # item by item: fine for a small upstream

    def delete_scope(self) -> tuple[str, Sequence[Any]] | None:
        return "t.station = $3", (self.station,)


class ExampleActivities(StreamActivities):
    def stager_for(self, spec: StreamSpec) -> Stager:
        return ReadingStager(spec.params["station"])

    def paginator_for(self, spec: StreamSpec, page_size: int, landed: frozenset[str]
                      ) -> Paginator:
        return JsonArrayWindows()  # one whole array per request

    @activity.defn(name="example_sync_streams")
    async def sync_streams(self, request: SyncRequest) -> SyncOutcome:
        return await self.sync(request)
