"""The directory reader on the real broker: full read, follow, tombstones, read-your-writes."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from pipeline.identify.directory import Account, DirectoryEmployee
from pipeline.identify.reader import DirectoryReader

pytestmark = pytest.mark.slow

DUPONT = Account(id="ACC-1042", name="Boulangerie Dupont", tier="standard")


def record(employee_id: str, phone: str) -> tuple[str, bytes]:
    employee = DirectoryEmployee(id=employee_id, name=employee_id, account=DUPONT,
                                 phones=[phone])
    return employee_id, employee.model_dump_json().encode()


async def test_reader_sees_every_change_made_before_the_catch_up(settings, kafka_io):
    await kafka_io.create_topics()
    await kafka_io.produce("directory.employees", [record("EMP-1", "06 12 34 56 78"),
                                                   record("EMP-2", "07 81 22 33 44")])
    reader = DirectoryReader(settings.kafka, "FR")
    await reader.start()
    follow = asyncio.create_task(reader.run())
    try:
        await reader.catch_up()
        assert set(reader.directory.employees) == {"EMP-1", "EMP-2"}
        # Changes produced just now are applied once catch_up(since=now) returns: no sleep,
        # no restart.
        await kafka_io.produce("directory.employees", [("EMP-2", None),
                                                       record("EMP-3", "+33 6 00 00 00 01")])
        await reader.catch_up(since=time.time())
        assert set(reader.directory.employees) == {"EMP-1", "EMP-3"}
        assert [e.id for e in reader.directory.owners("phone:+33600000001")] == ["EMP-3"]
        assert reader.directory.owners("phone:+33781223344") == []
        # An older message needs no new request: the directory is already newer than it.
        before = reader.consistent_as_of
        await reader.catch_up(since=before - 1)
        assert reader.consistent_as_of == before
    finally:
        follow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follow
        await reader.stop()
