"""The fault run's two small helpers: its progress lines and the commands it runs."""

from __future__ import annotations

import asyncio
import sys


def log(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


async def run(*command: str, check: bool = True, timeout: float = 120) -> str:
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError(f"{' '.join(command)} did not end within {timeout} s")
    text = output.decode(errors="replace").strip()
    if check and process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{text}")
    return text
