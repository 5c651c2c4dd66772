/**
 * The one export of network inputs for TensorFlow's side of a comparison: the features and targets
 * of row sets (x_NAME.npy as rows x width float32, y_NAME.npy), assembled by the step's own
 * FeatureAssembler so Keras trains on exactly what ms-keras does.
 */
import { mkdirSync } from "node:fs";
import { path, writeNpy } from "../lib.mjs";

/** Writes x_NAME.npy and y_NAME.npy into `dir` for each `{ NAME: rows }`, rows in the given order. */
export function writeFeatureNpys(dir, assembler, sets) {
  mkdirSync(dir, { recursive: true });
  for (const [name, rows] of Object.entries(sets)) {
    const x = new Float32Array(rows.length * assembler.width);
    const y = new Float32Array(rows.length);
    assembler.fill(rows, 0, rows.length, x, y);
    writeNpy(path.join(dir, `x_${name}.npy`), x, [rows.length, assembler.width]);
    writeNpy(path.join(dir, `y_${name}.npy`), y, [rows.length]);
  }
}
