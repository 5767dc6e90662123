// Token frames: a node sends a job's first token at once and coalesces the later ones
// into one `tokens` frame per --flush-ms; the buyer's stream is the same text however
// the node grouped the tokens. Real `idlegrid node` processes on the bundled
// cloud model (~1 ms a token here, so 64 tokens take well under the long interval).
import { assert, run, startCoordinator, createKey, startNode, waitNodes, post, readSSE, streamText,
         stop, waitFor, requireNodeAgent } from './grid.mjs';

requireNodeAgent();
const MAXT = 64;
const BODY = { model: 'cloud', prompt: 'ROMEO: But soft, what light', max_tokens: MAXT, temperature: 0 };

// One stream on a coordinator whose only node runs with the given --flush-ms; returns
// the text, the content events and the node's `job_end` log line.
async function streamWith(flushMs) {
  const coord = await startCoordinator();
  const key = createKey(coord.data);
  const node = startNode(coord, { name: `frames-${flushMs}`, model: 'cloud', cls: 'cloud', slots: 1,
                                  extra: ['--flush-ms', String(flushMs)] });
  await waitNodes(coord.url, 1);
  const res = await post(coord.url, '/v1/completions', key, { ...BODY, stream: true,
                                                               stream_options: { include_usage: true } });
  assert.equal(res.status, 200);
  const { events, done } = await readSSE(res);
  assert.ok(done, 'stream ended with [DONE]');
  assert.ok(!events.some((e) => e.error), `no error event: ${JSON.stringify(events.find((e) => e.error))}`);
  const usage = events.find((e) => e.usage)?.usage;
  assert.ok(usage, 'usage chunk');
  const end = await waitFor('job_end log line', () => {
    const line = node.err.split('\n').find((l) => l.includes('"job_end"'));
    return line ? JSON.parse(line) : null;
  }, 10000);
  await stop(node);
  await stop(coord.proc);
  const content = events.filter((e) => e.choices && e.choices[0] && e.choices[0].text !== undefined);
  return { text: streamText(events), content, usage, end };
}

await run({
  async every_token_its_own_frame_with_flush_ms_0() {
    const r = await streamWith(0);
    assert.equal(r.usage.completion_tokens, MAXT);
    assert.equal(r.end.completion_tokens, MAXT);
    assert.equal(r.end.token_frames, MAXT, `one frame per token: ${JSON.stringify(r.end)}`);
  },
  async coalesced_frames_carry_the_same_stream() {
    const single = await streamWith(0);
    const grouped = await streamWith(1000);
    assert.equal(grouped.usage.completion_tokens, MAXT);
    // the first token alone (time to first token), then the rest at the end of the
    // job: 64 tokens take far less than the 1000 ms interval on this model
    assert.ok(grouped.end.token_frames >= 2 && grouped.end.token_frames <= 4,
              `few frames: ${JSON.stringify(grouped.end)}`);
    assert.equal(grouped.text, single.text, 'same text however the tokens were grouped');
    // the coordinator relays a frame's tokens as one chunk (OpenAI chunks may hold
    // several tokens), so the buyer sees fewer, larger chunks of the same text
    assert.ok(grouped.content.length < single.content.length,
              `fewer chunks: ${grouped.content.length} vs ${single.content.length}`);
  },
});
