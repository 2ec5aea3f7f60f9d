"""Commands as a user runs them, for every pipeline's tests: `pipeworks` and `temporal`
as asyncio subprocesses, so that an in-process worker sharing the test's event loop keeps
working while a command waits for a run."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.temporal import temporal_cli_path
from pipeworks.settings import Settings

COMMAND_TIMEOUT = 60.0


@dataclass
class Ran:
    argv: list[str]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def __str__(self) -> str:
        return f"{self.argv[-6:]} exited {self.code}\nstdout: {self.out}\nstderr: {self.err}"


async def finish(process: asyncio.subprocess.Process, argv: list[str],
                 timeout: float = COMMAND_TIMEOUT) -> Ran:
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
        raise AssertionError(f"{argv} still ran after {timeout}s\nstdout: {out.decode()}\n"
                             f"stderr: {err.decode()}") from None
    assert process.returncode is not None
    return Ran(argv, process.returncode, out.decode(), err.decode())


class Commands:
    """Runs `pipeworks` and `temporal` with the test's settings; kills what is left."""

    @classmethod
    def for_settings(cls, settings: Settings, cwd: Path, upstream: Mapping[str, str]
                     ) -> Commands:
        """As a user with only the test's stack configured (`upstream`: the pipeline's
        own settings), in a wide, uncoloured terminal."""
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("PIPEWORKS_", "TEMPORAL_"))}
        assert settings.database_url is not None
        env = {**base, "COLUMNS": "200", "NO_COLOR": "1",
               "PIPEWORKS_DATABASE_URL": settings.database_url.get_secret_value(),
               "PIPEWORKS_TEMPORAL_ADDRESS": settings.temporal_address,
               "PIPEWORKS_TASK_QUEUE": settings.task_queue,
               "PIPEWORKS_HOME": str(settings.home), **upstream}
        return cls(env, cwd, settings.temporal_address, settings.task_queue)

    def __init__(self, env: dict[str, str], cwd: Path, address: str, task_queue: str) -> None:
        self.env, self.cwd = env, cwd
        self.address, self.task_queue = address, task_queue
        self._processes: list[asyncio.subprocess.Process] = []

    async def start(self, argv: list[str], env: Mapping[str, str] | None = None
                    ) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=self.cwd, env={**self.env, **(env or {})},
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        self._processes.append(process)
        return process

    def pipeworks_argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "starters.cli", *args]

    async def background(self, *args: str, env: Mapping[str, str] | None = None
                         ) -> asyncio.subprocess.Process:
        return await self.start(self.pipeworks_argv(*args), env)

    async def __call__(self, *args: str, env: Mapping[str, str] | None = None,
                       timeout: float = COMMAND_TIMEOUT) -> Ran:
        argv = self.pipeworks_argv(*args)
        return await finish(await self.start(argv, env), argv, timeout)

    async def temporal(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> Ran:
        argv = [temporal_cli_path(), "workflow", *args, "--address", self.address,
                "--disable-config-file", "--color", "never"]
        return await finish(await self.start(argv), argv, timeout)

    async def close(self) -> None:
        for process in self._processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
