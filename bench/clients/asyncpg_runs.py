"""Times one statement through asyncpg, for bench/routerReads.ts --client asyncpg.

usage: asyncpg_runs.py < {"url", "sql" (with $1 … placeholders), "values": [...], "runs": N} > {"ms": [...], "rows": [[...]]}

asyncpg prepares each statement under a name and asks for every result in binary, its values sent
in binary too: how asyncpg applications (FastAPI and the like) read. Each run is timed alone, after
one untimed run that prepares the statement; rows are the last run's, each value through str().
"""
import asyncio
import json
import sys
import time


async def main():
    import asyncpg

    job = json.load(sys.stdin)
    conn = await asyncpg.connect(job["url"])
    try:
        await conn.execute("SET TimeZone = 'UTC'")
        await conn.fetch(job["sql"], *job["values"])
        times = []
        rows = []
        for _ in range(job["runs"]):
            start = time.perf_counter()
            rows = await conn.fetch(job["sql"], *job["values"])
            times.append((time.perf_counter() - start) * 1000)
    finally:
        await conn.close()
    json.dump({"ms": times, "rows": [[None if v is None else str(v) for v in r] for r in rows]}, sys.stdout)


asyncio.run(main())
