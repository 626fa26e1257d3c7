"""`SELECT stack_id, sum(value) FROM samples GROUP BY stack_id` over Flight SQL (the ADBC
client) against a running `strata server`, and DuckDB running the same query on the same
blocks' `samples.parquet` files, in one run, alternating.

    python3 benches/sql_vs_duckdb.py grpc://127.0.0.1:7070 '<data dir>/blocks/*/samples.parquet' 7

Prints, for each side, the median wall time of the runs (after one warm-up), the number of
groups and the total of the values (which must agree).
"""

import statistics
import sys
import time

import adbc_driver_flightsql.dbapi as flight_sql
import duckdb

SQL = "SELECT stack_id, sum(value) AS value FROM samples GROUP BY stack_id"


def timed(run, iterations):
    rows = run()  # warm-up
    walls = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        rows = run()
        walls.append(time.perf_counter() - t0)
    return walls, rows


def main():
    uri, glob, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3])
    strata = flight_sql.connect(uri)
    cur = strata.cursor()

    def strata_query():
        cur.execute(SQL)
        return cur.fetch_arrow_table()

    con = duckdb.connect()
    con.execute("SET threads = 2")
    parquet_sql = SQL.replace("FROM samples", f"FROM read_parquet('{glob}')")

    def duckdb_query():
        return con.sql(parquet_sql).to_arrow_table()

    for name, run in [("strata flight sql", strata_query), ("duckdb 2 threads", duckdb_query)]:
        walls, table = timed(run, iterations)
        groups = table.num_rows
        total = sum(v for v in table.column("value").to_pylist() if v is not None)
        print(
            f"{name}: median {statistics.median(walls) * 1e3:.1f} ms of {iterations} "
            f"(min {min(walls) * 1e3:.1f}); groups={groups} total={total}",
            flush=True,
        )


if __name__ == "__main__":
    main()
