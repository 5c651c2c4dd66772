"""pyarrow's view of ms artifacts, for the interop tests.

Usage: python read_pyarrow.py OUT_DIR PARQUET...
For each Parquet file: its Arrow schema (name, type, nullable) and row count on stdout as one JSON
document, and each column dumped raw to OUT_DIR/<index>-<column>.bin (int32/float32 little-endian;
a list<float> column flattened, with its list lengths in OUT_DIR/<index>-<column>.lengths.bin), so
the test compares values bit for bit with our readers.
"""
import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

out = sys.argv[1]
files = []
for index, path in enumerate(sys.argv[2:]):
    table = pq.read_table(path)
    fields = [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in table.schema]
    for f in table.schema:
        col = table.column(f.name).combine_chunks()
        if pa.types.is_list(f.type):
            col.values.to_numpy(zero_copy_only=False).astype(np.float32).tofile(f"{out}/{index}-{f.name}.bin")
            np.diff(col.offsets.to_numpy()).astype(np.int32).tofile(f"{out}/{index}-{f.name}.lengths.bin")
        else:
            col.to_numpy(zero_copy_only=False).tofile(f"{out}/{index}-{f.name}.bin")
    files.append({"path": path, "rows": table.num_rows, "fields": fields, "pyarrow": pa.__version__})
print(json.dumps(files))
