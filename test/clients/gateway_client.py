"""A real PostgreSQL driver against the hypershard gateway (and the access node), for the client
matrix in test/integration/gatewayClients.test.ts.

usage: gateway_client.py DRIVER URL < cases.json > answers.json

DRIVER asyncpg-router or psycopg3-router: each case outside a transaction, twice, results in binary
(router reads); "rewritten" holds the first answer, "written" the second.

cases.json: [{"id", "sql" (with $1 … placeholders), "params": [...]}]. Each case runs twice in
one REPEATABLE READ transaction, rewritten (as the gateway does by default) and with
`SET hypershard.rewrite = off` (as written), so now() is one instant for both. The answers are
printed as text, each value through str(), per driver.
"""
import asyncio
import json
import re
import sys

DRIVER, URL = sys.argv[1], sys.argv[2]
CASES = json.load(sys.stdin)


def text_rows(rows):
    return [[None if v is None else str(v) for v in row] for row in rows]


def pyformat(sql):
    return re.sub(r"\$(\d+)", "%s", sql)


def run_psycopg3():
    import psycopg

    out = []
    with psycopg.connect(URL) as conn:
        for case in CASES:
            sql, params = pyformat(case["sql"]), case["params"]
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                # Prepared (server-side, named) and binary results, then as written.
                with conn.cursor(binary=True) as cur:
                    rewritten = text_rows(cur.execute(sql, params, prepare=True).fetchall())
                conn.execute("SET hypershard.rewrite = off")
                written = text_rows(conn.execute(sql, params).fetchall())
                conn.execute("SET hypershard.rewrite = on")
            out.append({"id": case["id"], "rewritten": rewritten, "written": written})
        # Pipeline mode: several statements in flight at once.
        with conn.pipeline():
            cursors = [conn.execute(pyformat(c["sql"]), c["params"]) for c in CASES]
        piped = [text_rows(c.fetchall()) for c in cursors]
    return out, piped


def run_psycopg2():
    import psycopg2

    out = []
    conn = psycopg2.connect(URL)
    conn.set_session(isolation_level="REPEATABLE READ")
    cur = conn.cursor()
    for case in CASES:
        sql, params = pyformat(case["sql"]), case["params"]
        cur.execute(sql, params)
        rewritten = text_rows(cur.fetchall())
        cur.execute("SET hypershard.rewrite = off")
        cur.execute(sql, params)
        written = text_rows(cur.fetchall())
        cur.execute("SET hypershard.rewrite = on")
        conn.commit()
        out.append({"id": case["id"], "rewritten": rewritten, "written": written})
    conn.close()
    return out, None


async def run_asyncpg_async():
    import asyncpg

    out = []
    conn = await asyncpg.connect(URL)
    for case in CASES:
        async with conn.transaction(isolation="repeatable_read"):
            stmt = await conn.prepare(case["sql"])
            rewritten = text_rows(await stmt.fetch(*case["params"]))
            await conn.execute("SET hypershard.rewrite = off")
            written = text_rows(await conn.fetch(case["sql"], *case["params"]))
            await conn.execute("SET hypershard.rewrite = on")
        out.append({"id": case["id"], "rewritten": rewritten, "written": written})
    await conn.close()
    return out, None


def router_params(params):
    """JSON parameters as Python values: {"timestamptz": iso} as an aware datetime."""
    from datetime import datetime

    return [datetime.fromisoformat(p["timestamptz"]) if isinstance(p, dict) else p for p in params]


def refused(e):
    """A server error as an answer, [["error", SQLSTATE]]: what must match; anything else is raised."""
    if getattr(e, "sqlstate", None) is None:
        raise e
    return [["error", e.sqlstate]]


async def answer_or_error(run):
    """The rows of one execution as text, or the server's refusal."""
    try:
        return text_rows(await run())
    except Exception as e:
        return refused(e)


async def run_asyncpg_router_async():
    """Each case outside a transaction, twice (prepared once), as an application would: results
    and parameters in binary."""
    import asyncpg

    out = []
    conn = await asyncpg.connect(URL)
    for case in CASES:
        params = router_params(case["params"])
        first = await answer_or_error(lambda: conn.fetch(case["sql"], *params))
        again = await answer_or_error(lambda: conn.fetch(case["sql"], *params))
        out.append({"id": case["id"], "rewritten": first, "written": again})
    await conn.close()
    return out, None


def run_psycopg3_router():
    """Each case outside a transaction, twice: server-side binding, prepared, binary results."""
    import psycopg

    out = []
    with psycopg.connect(URL, autocommit=True) as conn:
        for case in CASES:
            sql, params = pyformat(case["sql"]), router_params(case["params"])
            answers = []
            for _ in range(2):
                try:
                    with conn.cursor(binary=True) as cur:
                        answers.append(text_rows(cur.execute(sql, params, prepare=True).fetchall()))
                except psycopg.Error as e:
                    answers.append(refused(e))
            first, again = answers
            out.append({"id": case["id"], "rewritten": first, "written": again})
    return out, None


DRIVERS = {
    "asyncpg-router": lambda: asyncio.run(run_asyncpg_router_async()),
    "psycopg3-router": run_psycopg3_router,
    "psycopg3": run_psycopg3,
    "psycopg2": run_psycopg2,
    "asyncpg": lambda: asyncio.run(run_asyncpg_async()),
}

answers, piped = DRIVERS[DRIVER]()
json.dump({"answers": answers, "pipelined": piped}, sys.stdout)
