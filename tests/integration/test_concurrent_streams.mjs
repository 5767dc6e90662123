// Load spread: 50 concurrent streaming clients across 3 edge nodes all complete with
// every token, and /metrics shows jobs and tokens on every node. Uses the real node
// agent when IG_REAL_NODES=1 (and the engine can run), else deterministic test peers.
import { assert, run, startCoordinator, createKey, startNode, waitNodes, post, readSSE, streamText, metrics,
         metricValues, stop, requireNodeAgent } from './grid.mjs';

const REAL = process.env.IG_REAL_NODES === '1';
const CLIENTS = 50;
const TOKENS = 24;
let coord, key, nodes = [];
if (REAL) requireNodeAgent();

await run({
  async setup() {
    coord = await startCoordinator();
    key = createKey(coord.data, { concurrency: 0, rate: 0 });
    for (let i = 0; i < 3; i++) nodes.push(startNode(coord, { name: `edge-${i + 1}`, peer: !REAL, rate: 100, slots: 4 }));
    await waitNodes(coord.url, 3);
  },
  async test_50_concurrent_streams_all_complete_across_3_nodes() {
    const t0 = Date.now();
    const results = await Promise.all(Array.from({ length: CLIENTS }, async (_, i) => {
      const chat = i % 2 === 0;
      const res = await post(coord.url, chat ? '/v1/chat/completions' : '/v1/completions', key, {
        model: 'edge', stream: true, max_tokens: TOKENS, temperature: 0,
        ...(chat ? { messages: [{ role: 'user', content: `client ${i}` }] } : { prompt: `client ${i}:` }),
      });
      assert.equal(res.status, 200, `client ${i}: ${res.status}`);
      const { events, done } = await readSSE(res);
      assert.ok(done, `client ${i} got [DONE]`);
      assert.ok(!events.some((e) => e.error), `client ${i} error: ${JSON.stringify(events.find((e) => e.error))}`);
      const last = events[events.length - 1];
      assert.ok(['length', 'stop'].includes(last.choices[0].finish_reason), `client ${i} finish_reason`);
      return { node: res.headers.get('x-idlegrid-node'), text: streamText(events) };
    }));
    const secs = (Date.now() - t0) / 1000;
    if (!REAL) for (const r of results) assert.equal(r.text.split(' t').length - 1, TOKENS, 'every token arrived');
    const used = new Set(results.map((r) => r.node));
    assert.equal(used.size, 3, `all 3 nodes served clients: ${[...used]}`);
    const m = await metrics(coord.url);
    const jobs = metricValues(m, 'idlegrid_node_jobs_total');
    const tokens = metricValues(m, 'idlegrid_node_tokens_total');
    assert.equal(Object.keys(jobs).length, 3, JSON.stringify(jobs));
    for (const [n, v] of Object.entries(jobs)) {
      assert.ok(v >= 2, `node ${n} ran ${v} jobs`);
      assert.ok(tokens[n] > 0, `node ${n} produced tokens`);
    }
    assert.equal(Object.values(jobs).reduce((a, b) => a + b, 0), CLIENTS);
    console.log(`  ${CLIENTS} streams in ${secs.toFixed(2)} s; jobs per node ${JSON.stringify(jobs)}`);
  },
  async teardown() {
    for (const n of nodes) await stop(n);
    assert.equal((await stop(coord.proc)).code, 0);
  },
});
