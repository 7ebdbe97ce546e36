import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderSummary, summarizeProfile } from '../../bench/profile-summary.js';

/** root → (idle), and root → handle (own code) → writev (native): 2 ms idle, 1 ms handle, 1 ms writev. */
const profile = {
  nodes: [
    { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 }, children: [2, 3] },
    { id: 2, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
    {
      id: 3,
      callFrame: { functionName: 'handle', url: 'file:///app/dist/listeners/http1.js', lineNumber: 9 },
      children: [4],
    },
    { id: 4, callFrame: { functionName: 'writev', url: '', lineNumber: -1 } },
  ],
  samples: [2, 2, 3, 4],
  timeDeltas: [0, 1000, 1000, 1000, 1000],
  startTime: 0,
  endTime: 4000,
};

test('a profile summary separates idle time and gives shares of the busy time', () => {
  const summary = summarizeProfile(profile);
  assert.equal(summary.totalMs, 4);
  assert.equal(summary.idleMs, 2);
  assert.deepEqual(summary.inclusiveOwnCode, [{ name: 'handle dist/listeners/http1.js:10', ms: 2 }]);
  const text = renderSummary(summary);
  assert.match(text, /sampled time: 4 ms, of which busy \(not idle\): 2 ms/);
  // writev: 1 ms of 4 sampled (25 %) and of 2 busy (50 %); idle itself is not a row.
  assert.match(text, /25\.0% {3}50\.0% {7}1 ms {2}writev/);
  assert.doesNotMatch(text, /ms {2}\(idle\)/);
});
