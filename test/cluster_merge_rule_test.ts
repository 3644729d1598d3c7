import { expect, test } from "bun:test";
import { mergeWinner } from "../src/cluster/merge_rule.ts";

test("a tie of sizes goes to the member list with the higher version, then to the lower master id", () => {
  // A seed restarted alone (version 1, the lower id) against the member that kept the data.
  expect(mergeWinner({ size: 1, master: "a2", version: 1 }, { size: 1, master: "b", version: 4 })).toBe("b");
  expect(mergeWinner({ size: 1, master: "b", version: 4 }, { size: 1, master: "a2", version: 1 })).toBe("a");
  // Size still comes first, and the quorum before it.
  expect(mergeWinner({ size: 2, master: "a", version: 1 }, { size: 1, master: "b", version: 9 })).toBe("a");
  expect(
    mergeWinner({ size: 1, master: "a", version: 9, quorum: false }, {
      size: 1,
      master: "b",
      version: 1,
      quorum: true,
    }),
  )
    .toBe("b");
  // Equal versions, or one unknown (an older member's hello): the lower master id.
  expect(mergeWinner({ size: 1, master: "a", version: 3 }, { size: 1, master: "b", version: 3 })).toBe("a");
  expect(mergeWinner({ size: 1, master: "b", version: 9 }, { size: 1, master: "a" })).toBe("b");
});
