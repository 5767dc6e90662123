// The official openai npm client against `idlegrid up` (coordinator + 3 edge nodes +
// 1 cloud node, real processes, the bundled models): completions and chat
// completions, streaming and not. Greedy completions equal `idlegrid generate --temp 0`
// for the same model and prompt; streams equal their non-streamed twins; a node process
// that dies is started again and serves; Ctrl-C stops the grid and reaps every node.
import OpenAI from 'openai';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { assert, health, run, start, tempDir, waitFor, BIN, MODELS, requireNodeAgent } from '../integration/grid.mjs';

requireNodeAgent();

let up, client, url, key;
const N = 24;

function generate(model, prompt) {
  return execFileSync(BIN, ['generate', '-m', join(MODELS, `${model}.gguf`), '-p', prompt, '-n', String(N),
                            '--temp', '0', '--threads', '1'], { encoding: 'utf8' });
}

function childrenOf(pid) {
  const kids = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) kids.push(Number(d));
    } catch {}
  }
  return kids;
}

async function collect(stream, chat) {
  let text = '';
  let finish = null;
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    text += chat ? (c.delta?.content ?? '') : c.text;
    if (c.finish_reason) finish = c.finish_reason;
  }
  return { text, finish };
}

await run({
  async setup() {
    const data = tempDir();
    up = start(BIN, ['up', '--port', '0', '--data', data, '--models', MODELS, '--key', 'ig-test-key-0123456789']);
    const m = await waitFor('idlegrid up to print the API URL',
                            () => /API\s+(http:\/\/\S+)\s+key\s+(\S+)/.exec(up.out), 120000, 100);
    url = m[1];
    key = m[2];
    assert.equal(key, 'ig-test-key-0123456789', 'up prints the key it was given');
    client = new OpenAI({ baseURL: url, apiKey: key, maxRetries: 0 });
  },
  async test_models_lists_edge_and_cloud() {
    const ids = [];
    for await (const mdl of client.models.list()) ids.push(mdl.id);
    assert.deepEqual(ids.sort(), ['cloud', 'edge']);
  },
  async test_completion_greedy_equals_idlegrid_generate() {
    for (const model of ['edge', 'cloud']) {
      const expected = generate(model, 'ROMEO:');
      assert.ok(expected.length > 0);
      const r = await client.completions.create({ model, prompt: 'ROMEO:', max_tokens: N, temperature: 0 });
      assert.equal(r.choices[0].text, expected, `${model}: API text equals idlegrid generate`);
      assert.equal(r.usage.completion_tokens, N);
      assert.equal(r.idlegrid.model_class, model === 'cloud' ? 'cloud' : 'edge');
    }
  },
  async test_completion_stream_equals_generate() {
    const expected = generate('edge', 'JULIET:');
    const stream = await client.completions.create({ model: 'edge', prompt: 'JULIET:', max_tokens: N, temperature: 0, stream: true });
    const { text, finish } = await collect(stream, false);
    assert.equal(text, expected);
    assert.equal(finish, 'length');
  },
  async test_chat_nonstream_and_stream_agree() {
    const messages = [{ role: 'user', content: 'Who is there?' }];
    const r = await client.chat.completions.create({ model: 'edge', messages, max_tokens: N, temperature: 0 });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.ok(r.choices[0].message.content.length > 0);
    assert.ok(r.usage.prompt_tokens > 0);
    const stream = await client.chat.completions.create({ model: 'edge', messages, max_tokens: N, temperature: 0,
                                                          stream: true, stream_options: { include_usage: true } });
    let text = '', usage = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    assert.equal(text, r.choices[0].message.content, 'streamed chat equals the non-streamed answer');
    assert.equal(usage.completion_tokens, r.usage.completion_tokens);
  },
  async test_seeded_sampling_is_reproducible_and_logprobs_present() {
    const req = { model: 'edge', messages: [{ role: 'user', content: 'Speak' }], max_tokens: 16, temperature: 0.9,
                  seed: 77, logprobs: true, top_logprobs: 2 };
    const a = await client.chat.completions.create(req);
    const b = await client.chat.completions.create(req);
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
    const lp = a.choices[0].logprobs.content;
    assert.equal(lp.length, a.usage.completion_tokens);
    for (const t of lp) {
      assert.ok(t.logprob <= 0, `logprob ${t.logprob}`);
      assert.equal(t.top_logprobs.length, 2);
    }
  },
  async test_client_sees_api_errors() {
    await assert.rejects(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
                         (e) => e.status === 404 && /nope/.test(e.message));
    // A prompt longer than the model's 256-token context: the buyer's error, not the grid's.
    await assert.rejects(client.completions.create({ model: 'edge', prompt: 'To be or not to be, '.repeat(100) }),
                         (e) => e.status === 400 && e.code === 'context_length_exceeded');
    const bad = new OpenAI({ baseURL: url, apiKey: 'wrong-key-xxxxxxxxxxxx', maxRetries: 0 });
    await assert.rejects(bad.completions.create({ model: 'edge', prompt: 'x' }), (e) => e.status === 401);
  },
  async test_a_node_that_dies_is_started_again_and_serves() {
    const before = childrenOf(up.pid);
    assert.equal(before.length, 4, `4 node processes, got ${before}`);
    const victim = before.find((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('edge-2'));
    assert.ok(victim, 'edge-2 is one of the children');
    process.kill(victim, 'SIGKILL');
    await waitFor('up to report edge-2 exited and schedule its restart',
                  () => /node edge-2 \(pid \d+\) exited \(signal 9\); restarting in 1 s/.test(up.err), 10000);
    await waitFor('edge-2 started again', () => /node edge-2 started again \(pid \d+, restart 1\)/.test(up.err), 10000);
    const after = await waitFor('4 node processes again', () => {
      const k = childrenOf(up.pid);
      return k.length === 4 && !k.includes(victim) ? k : null;
    }, 10000);
    assert.equal(after.length, 4);
    // It rejoins under its enrolled key: 4 nodes connected, and it takes work again.
    const base = url.replace(/\/v1$/, '');
    await waitFor('4 nodes connected', async () => (await health(base)).nodes === 4, 60000, 200);
    const r = await client.completions.create({ model: 'edge', prompt: 'ROMEO:', max_tokens: 4, temperature: 0 });
    assert.equal(r.usage.completion_tokens, 4);
  },
  async test_ctrl_c_stops_the_grid_and_reaps_nodes() {
    const kids = childrenOf(up.pid);
    assert.equal(kids.length, 4, `4 node processes, got ${kids}`);
    up.kill('SIGINT');
    const r = await up.exited;
    assert.equal(r.code, 0, `up exit ${JSON.stringify(r)}: ${up.err.slice(-1000)}`);
    for (const k of kids) {
      let alive = true;
      try { readFileSync(`/proc/${k}/stat`); } catch { alive = false; }
      assert.ok(!alive, `node process ${k} is gone`);
    }
  },
});
