import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { identityKey, sameIdentity } from "./identity.ts";

describe("identities", () => {
  it("match look-alikes: case, spaces, compatibility forms, Unicode hyphens and other scripts' letters", () => {
    for (const name of [
      "support-agent-17",
      "Support-Agent-17",
      " support-agent-17\t",
      "support\u2010agent\u201017",
      "ｓｕｐｐｏｒｔ－ａｇｅｎｔ－１７",
      "\u0455upport-agent-17",
      "support-agent-l7",
    ])
      assert.ok(sameIdentity(name, "support-agent-17"), JSON.stringify(name));
  });

  it("keeps different names apart", () => {
    for (const name of ["support-agent-18", "support-agent", "support_agent_17", "agent-17-support", ""])
      assert.equal(sameIdentity(name, "support-agent-17"), false, JSON.stringify(name));
  });

  it("gives one key for a name however it is composed", () => {
    assert.equal(identityKey("Ame\u0301lie"), identityKey("amélie"));
    assert.equal(identityKey(identityKey("Ｆｉｎａｎｃｅ-Lead")), identityKey("finance-lead"));
  });
});
