/** The engine version written into every record's `determinism.engine_version`. Kept in step with package.json. */
export const VERSION = "0.1.0";
