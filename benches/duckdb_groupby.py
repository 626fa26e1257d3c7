"""DuckDB side of `benches/query.rs`: `SELECT stack_id, sum(value) ... GROUP BY stack_id` over
the engine's `samples.parquet` files, timed inside this process.

    python3 duckdb_groupby.py <glob> <iterations> <threads>...

Prints one line of `key=value` pairs per thread count: wall seconds of every timed run (after
one untimed warm-up run), process CPU seconds (all threads, `time.process_time`) per run, the
number of groups and the sum of all values (to check against the Rust side).
"""

import sys
import time

import duckdb


def main():
    glob, iterations, threads = sys.argv[1], int(sys.argv[2]), [int(t) for t in sys.argv[3:]]
    sql = f"SELECT stack_id, sum(value) AS value FROM read_parquet('{glob}') GROUP BY stack_id"
    con = duckdb.connect()
    for t in threads:
        con.execute(f"SET threads = {t}")
        rows = con.execute(sql).fetchall()  # warm-up
        walls = []
        cpu0 = time.process_time()
        for _ in range(iterations):
            t0 = time.perf_counter()
            rows = con.execute(sql).fetchall()
            walls.append(time.perf_counter() - t0)
        cpu = (time.process_time() - cpu0) / iterations
        total = sum(int(r[1]) for r in rows)
        walls_s = ",".join(f"{w:.6f}" for w in walls)
        print(
            f"threads={t} version={duckdb.__version__} cpu={cpu:.6f} groups={len(rows)} "
            f"total={total} walls={walls_s}",
            flush=True,
        )


if __name__ == "__main__":
    main()
