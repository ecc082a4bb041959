import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { GENERATED_VALIDATOR, generateRequestValidator } from "../../scripts/generate-validators.ts";

describe("request schema validator", () => {
  it("is generated from the current schema (run `npm run generate` after editing a schema)", () => {
    assert.equal(readFileSync(GENERATED_VALIDATOR, "utf8"), generateRequestValidator());
  });
});
