// Failover in the coordinator, proved with deterministic test peers (no engine):
// a node SIGKILLed mid-stream; the buyer's stream completes and equals an
// undisturbed run with the same seed, greedy and sampled, completions and chat.
import { assert, run, startCoordinator, createKey, startNode, waitNodes, post, readSSE, streamText,
         metrics, stop } from './grid.mjs';

let coord, key, nodes = [];

async function streamOnce(body, { killAfter = -1 } = {}) {
  const res = await post(coord.url, body.messages ? '/v1/chat/completions' : '/v1/completions', key,
                         { ...body, stream: true });
  assert.equal(res.status, 200);
  const first = res.headers.get('x-idlegrid-node');
  assert.match(first, /^n-[0-9a-f]{12}$/);
  let killed = false;
  const { events, done } = await readSSE(res, async (ev, all) => {
    if (!killed && killAfter >= 0 && all.length >= killAfter) {
      killed = true;
      // SIGKILL the node that runs this job (the one named in the header).
      const victim = nodes.find((n) => n.nodeId === first);
      assert.ok(victim, `no node process for ${first}`);
      victim.kill('SIGKILL');
    }
  });
  assert.ok(done, 'stream ended with [DONE]');
  assert.ok(!events.some((e) => e.error), `no error event: ${JSON.stringify(events.find((e) => e.error))}`);
  return { text: streamText(events), events, first, killed };
}

async function nodeIds() {
  // Each peer logs its node id on welcome.
  for (const n of nodes) {
    const m = /welcome as (n-[0-9a-f]{12})/.exec(n.err);
    if (m) n.nodeId = m[1];
  }
}

async function ensureNodes(count) {
  nodes = nodes.filter((n) => n.exitCode === null && n.signalCode === null);
  while (nodes.length < count) nodes.push(startNode(coord, { name: `peer-${nodes.length}-${Date.now()}`, peer: true, rate: 100 }));
  await waitNodes(coord.url, count);
  await new Promise((r) => setTimeout(r, 100));
  await nodeIds();
}

async function checkFailover(body) {
  await ensureNodes(3);
  const clean = await streamOnce(body);
  await ensureNodes(3);
  const disturbed = await streamOnce(body, { killAfter: 10 });
  assert.ok(disturbed.killed, 'a node was killed mid-stream');
  assert.equal(disturbed.text, clean.text, 'failover stream equals the undisturbed one');
  const last = disturbed.events[disturbed.events.length - 1];
  assert.ok(last.idlegrid.nodes.length >= 2, 'the final chunk names every node that worked on it');
  assert.equal(last.idlegrid.failovers, 1);
  assert.equal(clean.text.split(' t').length - 1, body.max_tokens ?? body.max_completion_tokens);
}

await run({
  async setup() {
    coord = await startCoordinator({ heartbeatMs: 300 });
    key = createKey(coord.data);
  },
  async test_node_killed_midstream_greedy_completion_is_whole() {
    await checkFailover({ model: 'edge', prompt: 'ROMEO:', max_tokens: 40, temperature: 0 });
  },
  async test_node_killed_midstream_sampled_with_seed_is_whole() {
    await checkFailover({ model: 'edge', prompt: 'JULIET:', max_tokens: 40, temperature: 0.8, seed: 1234 });
  },
  async test_node_killed_midstream_chat_is_whole() {
    await checkFailover({ model: 'edge', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 40, temperature: 0.7, seed: 9 });
  },
  async test_failovers_counted_in_metrics() {
    const m = await metrics(coord.url);
    const f = Number(/^idlegrid_failovers_total (\d+)/m.exec(m)[1]);
    assert.ok(f >= 3, `failovers_total ${f}`);
  },
  async teardown() {
    for (const n of nodes) await stop(n);
    const r = await stop(coord.proc);
    assert.equal(r.code, 0, `coordinator exit: ${JSON.stringify(r)} ${coord.proc.err.slice(-2000)}`);
  },
});
