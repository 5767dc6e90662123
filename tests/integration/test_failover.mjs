// Failover: a node SIGKILLed mid-stream; the buyer's stream completes and its text
// equals an undisturbed run with the same seed, greedy and sampled, completions and
// chat. With deterministic test peers by default (the coordinator's part, no engine);
// with real `idlegrid node` processes and the bundled edge model when IG_REAL_NODES=1.
import { assert, run, startCoordinator, createKey, startNode, waitNodes, post, readSSE, streamText,
         metrics, stop, waitFor, requireNodeAgent } from './grid.mjs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const REAL = process.env.IG_REAL_NODES === '1';
if (REAL) requireNodeAgent();
// Real nodes use the bundled cloud model: the edge one finishes 160 tokens in ~40 ms,
// before a kill could land mid-stream. Both have a 256-token context.
const MODEL = REAL ? 'cloud' : 'edge';
const MAXT = REAL ? 200 : 40;
const KILL_AFTER = REAL ? 2 : 10;
let coord, key, nodes = [];
const killedProcs = [];

async function streamOnce(body, { killAfter = -1, signal = 'SIGKILL' } = {}) {
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
      victim.kill(signal);
      killedProcs.push(victim.exited);
    }
  });
  assert.ok(done, 'stream ended with [DONE]');
  assert.ok(!events.some((e) => e.error), `no error event: ${JSON.stringify(events.find((e) => e.error))}`);
  return { text: streamText(events), events, first, killed };
}

async function nodeIds() {
  // Each node logs the id the coordinator gave it on welcome.
  for (const n of nodes) {
    const m = /(?:welcome as |"node_id":")(n-[0-9a-f]{12})/.exec(n.err + n.out);
    if (m) n.nodeId = m[1];
  }
}

async function ensureNodes(count) {
  await Promise.all(killedProcs);
  nodes = nodes.filter((n) => n.exitCode === null && n.signalCode === null);
  while (nodes.length < count) nodes.push(startNode(coord, { name: `node-${nodes.length}-${Date.now()}`, peer: !REAL, rate: 100, model: MODEL, cls: REAL ? 'cloud' : 'edge' }));
  await waitNodes(coord.url, count);
  await waitFor('node ids', async () => { await nodeIds(); return nodes.every((n) => n.nodeId); }, 10000);
}

async function checkFailover(body, signal = 'SIGKILL') {
  await ensureNodes(3);
  const clean = await streamOnce(body);
  await ensureNodes(3);
  const disturbed = await streamOnce(body, { killAfter: KILL_AFTER, signal });
  assert.ok(disturbed.killed, 'a node was killed mid-stream');
  assert.equal(disturbed.text, clean.text, 'failover stream equals the undisturbed one');
  const last = disturbed.events[disturbed.events.length - 1];
  assert.ok(last.idlegrid.nodes.length >= 2, 'the final chunk names every node that worked on it');
  assert.equal(last.idlegrid.failovers, 1);
  if (!REAL) assert.equal(clean.text.split(' t').length - 1, body.max_tokens);
  assert.ok(clean.text.length > 0);
}

await run({
  async setup() {
    coord = await startCoordinator({ heartbeatMs: 300 });
    key = createKey(coord.data);
  },
  async test_node_killed_midstream_greedy_completion_is_whole() {
    await checkFailover({ model: MODEL, prompt: 'ROMEO:', max_tokens: MAXT, temperature: 0 });
  },
  async test_node_killed_midstream_sampled_with_seed_is_whole() {
    await checkFailover({ model: MODEL, prompt: 'JULIET:', max_tokens: MAXT, temperature: 0.8, seed: 1234 });
  },
  async test_node_killed_midstream_chat_is_whole() {
    await checkFailover({ model: MODEL, messages: [{ role: 'user', content: 'Hello' }], max_tokens: MAXT, temperature: 0.7, seed: 9 });
  },
  async test_node_leaving_gracefully_hands_back_and_stream_is_whole() {
    // SIGTERM: the node hands its job back with its progress; the job resumes elsewhere.
    await checkFailover({ model: MODEL, prompt: 'KING:', max_tokens: MAXT, temperature: 0.6, seed: 5 }, 'SIGTERM');
    assert.match(coord.proc.err, /"event":"job_failover"[^\n]*(hand|stopping|shutting down)/i,
                 `the coordinator resumed a handed-back job: ${coord.proc.err.split('\n').filter((l) => /job_failover/.test(l)).join('\n')}`);
  },
  async test_jobs_recorded_in_store_with_every_node() {
    const rows = execFileSync('sqlite3', ['-json', join(coord.data, 'coordinator.db'),
      "SELECT nodes, failovers, outcome, completion_tokens, finish_reason FROM jobs WHERE failovers > 0"],
      { encoding: 'utf8' });
    const jobs = JSON.parse(rows || '[]');
    assert.equal(jobs.length, 4, rows);
    for (const j of jobs) {
      assert.equal(j.outcome, 'ok');
      assert.equal(JSON.parse(j.nodes).length, 2, j.nodes);
      assert.equal(j.completion_tokens > 0, true);
    }
  },
  async test_failovers_counted_in_metrics() {
    const m = await metrics(coord.url);
    const f = Number(/^idlegrid_failovers_total (\d+)/m.exec(m)[1]);
    assert.equal(f, 4, `failovers_total ${f}`);
  },
  async teardown() {
    for (const n of nodes) await stop(n);
    const r = await stop(coord.proc);
    assert.equal(r.code, 0, `coordinator exit: ${JSON.stringify(r)} ${coord.proc.err.slice(-2000)}`);
  },
});
