/**
 * @ms/als: the als step of the ms pipeline (explicit ALS-WR with Spark MLlib semantics) and the
 * factors artifact contract that @ms/keras reads.
 */
export { readFactors, readFactorFile, writeFactors, writeFactorsArtifact, type FactorFile, type FactorsArtifactInput } from "./adapter.js";
export { FACTORS_FILES, type Factors, type FactorsDetails, type FactorTables, type ColdStartStrategy } from "./types.js";
export { ALS_VERSION } from "./version.js";
