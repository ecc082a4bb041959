/**
 * The layers of src/, lowest first. A module may import from its own layer and the layers below it, never
 * from a layer above; type imports count, and no import cycle is allowed anywhere. `npm test` runs this
 * check (`npm run layers`); docs/ARCHITECTURE.md draws the same picture.
 */
const LAYERS = [
  // Pure values and data: JSON, digests, ids, verdicts, problems; the starter assets and JSON Schemas.
  { name: "core", path: "^src/(core|assets|schemas)/" },
  // What is stored and exchanged: records, events, approvals, chain entries, and the pure functions over them.
  { name: "domain", path: "^src/domain/" },
  { name: "request", path: "^src/request/" },
  { name: "memory", path: "^src/memory/" },
  { name: "policy", path: "^src/policy/" },
  // The decision pipeline and its ports; no I/O of its own.
  { name: "engine", path: "^src/engine/" },
  // `lumyn/core`: the public entry of all of the above, the library without I/O.
  { name: "core-entry", path: "^src/lumyn-core\\.ts$" },
  // Persistence behind small interfaces: it knows the domain, not the engine.
  { name: "store", path: "^src/store/", mayImport: ["core", "domain"] },
  // Application services over the engine and the stores.
  { name: "audit", path: "^src/audit/" },
  { name: "authoring", path: "^src/authoring/" },
  { name: "approvals", path: "^src/approvals/" },
  { name: "registry", path: "^src/registry/" },
  // The library's facade: a gateway wired to its stores, and the workspace on disk.
  { name: "library", path: "^src/(lumyn|workspace)\\.ts$" },
  // `lumyn`: the public entry of the library (with everything of `lumyn/core`).
  { name: "entry", path: "^src/index\\.ts$" },
  // The HTTP contract: every route's definition, which the server serves and describes and the client calls.
  { name: "api", path: "^src/api/", mayImport: ["core", "domain"] },
  // Front ends: they reach the library through its public entries only (`lumyn`, `lumyn/core`; the CLI also
  // `lumyn/server`, src/server/server.ts), as an application built on Lumyn would.
  { name: "client", path: "^src/client/", mayImport: ["core", "domain", "api"] },
  { name: "server", path: "^src/server/", mayImport: ["core-entry", "entry", "api"] },
  { name: "cli", path: "^src/cli/", mayImport: ["core-entry", "entry", "server-entry"] },
  // Helpers for tests only (not built into dist/).
  { name: "testing", path: "^src/testing/" },
];

/** Entries into a layer that another layer may name in `mayImport` without being given the whole layer. */
const ENTRIES = [{ name: "server-entry", path: "^src/server/server\\.ts$" }];

const layerPaths = (layers) => layers.map((layer) => `(${layer.path})`).join("|");

const upward = LAYERS.flatMap((layer, index) => {
  const above = LAYERS.slice(index + 1);
  return above.length === 0
    ? []
    : [
        {
          name: `${layer.name}-imports-upward`,
          comment: `the ${layer.name} layer may not import from a layer above it (${above.map((l) => l.name).join(", ")})`,
          severity: "error",
          from: { path: layer.path },
          to: { path: layerPaths(above) },
        },
      ];
});

const narrowed = LAYERS.filter((layer) => layer.mayImport).map((layer) => {
  const allowed = [...LAYERS, ...ENTRIES].filter(
    (other) => other === layer || layer.mayImport.includes(other.name),
  );
  return {
    name: `${layer.name}-imports-outside-its-dependencies`,
    comment: `the ${layer.name} layer may import only ${layer.mayImport.join(" and ")}`,
    severity: "error",
    from: { path: layer.path },
    to: { path: "^src/", pathNot: layerPaths(allowed) },
  };
});

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment: "import cycles (type imports included) make layers meaningless",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "outside-the-layers",
      comment:
        "every module of src/ belongs to a layer: add new folders to LAYERS in .dependency-cruiser.cjs",
      severity: "error",
      from: { path: "^src/", pathNot: layerPaths(LAYERS) },
      to: {},
    },
    ...upward,
    ...narrowed,
  ],
  options: {
    // swc parses TypeScript and keeps type-only imports (TypeScript 7 has no compiler API to ask).
    parser: "swc",
    doNotFollow: { path: "node_modules" },
    exclude: { path: "\\.test\\.ts$|\\.conformance\\.ts$|/generated/|\\.d\\.ts$" },
    enhancedResolveOptions: { extensions: [".ts", ".js", ".json"] },
  },
};
