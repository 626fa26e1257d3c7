"""Per-file and per-column compressed bytes per row of every block under a data dir (a kept
`strata-bench` run's, `STRATA_BENCH_KEEP_DATA=1`):

    python3 benches/block_bytes.py <data dir>

Needs pyarrow.
"""
import sys, os, json, collections
import pyarrow.parquet as pq
root = sys.argv[1]
tot = collections.Counter(); rows = 0; nblocks = 0; cols = collections.Counter()
for dirpath, dirs, files in os.walk(root):
    if 'meta.json' in files:
        meta = json.load(open(os.path.join(dirpath, 'meta.json')))
        nblocks += 1; rows += meta['num_samples']
        for f, size in meta['files'].items():
            tot[f] += size
        md = pq.ParquetFile(os.path.join(dirpath, 'samples.parquet')).metadata
        for rg in range(md.num_row_groups):
            g = md.row_group(rg)
            for c in range(g.num_columns):
                cc = g.column(c)
                cols[cc.path_in_schema] += cc.total_compressed_size
        print(meta['id'], 'level', meta['level'], 'rows', meta['num_samples'], 'series', meta['num_series'], 'stacks', meta['num_stacks'], 'bytes', sum(meta['files'].values()), 'row groups', md.num_row_groups)
print('blocks', nblocks, 'rows', rows)
allb = sum(tot.values())
print('total %.2f B/row' % (allb / max(rows,1)))
for f, b in tot.most_common():
    print('  %-20s %6.2f B/row  %5.1f %%' % (f, b / max(rows,1), 100*b/allb))
for c, b in cols.most_common():
    print('    samples.%-14s %6.2f B/row' % (c, b / max(rows,1)))
