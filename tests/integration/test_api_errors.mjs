// Every buyer-facing error case: status, OpenAI's error shape and what it names; and
// that none of them disturbs another client. Runs against `idlegrid serve` with
// deterministic test peers (the API layer does not depend on the engine).
import { assert, run, startCoordinator, createKey, startNode, waitNodes, post, readSSE, streamText, cli,
         stop, waitFor } from './grid.mjs';

let coord, key, nodes = [];

async function expectError(res, status, { code = undefined, param = undefined, msg = undefined } = {}) {
  const text = await res.text();
  assert.equal(res.status, status, `status ${res.status}: ${text}`);
  assert.match(res.headers.get('content-type') || '', /application\/json/);
  const body = JSON.parse(text);
  assert.ok(body.error, `error object in ${text}`);
  for (const f of ['message', 'type', 'param', 'code']) assert.ok(f in body.error, `error.${f} present in ${text}`);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0);
  if (code !== undefined) assert.equal(body.error.code, code, text);
  if (param !== undefined) assert.equal(body.error.param, param, text);
  if (msg !== undefined) assert.match(body.error.message, msg);
  return body;
}

const chat = (extra = {}) => ({ model: 'edge', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ...extra });

await run({
  async setup() {
    coord = await startCoordinator({ heartbeatMs: 300 });
    key = createKey(coord.data);
    nodes.push(startNode(coord, { name: 'e1', peer: true, rate: 200 }));
    nodes.push(startNode(coord, { name: 'slow', model: 'slow', peer: true, rate: 10, slots: 1 }));
    await waitNodes(coord.url, 2);
  },
  async test_valid_request_says_where_it_ran() {
    const res = await post(coord.url, '/v1/chat/completions', key, chat());
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.match(res.headers.get('x-idlegrid-node'), /^n-[0-9a-f]{12}$/);
    assert.equal(body.idlegrid.node, res.headers.get('x-idlegrid-node'));
    assert.equal(body.idlegrid.model_class, 'edge');
    assert.equal(body.object, 'chat.completion');
    assert.equal(body.usage.completion_tokens, 4);
    assert.equal(body.choices[0].finish_reason, 'length');
  },
  async test_missing_key_is_401() {
    await expectError(await post(coord.url, '/v1/chat/completions', null, chat()), 401, { code: 'missing_api_key' });
  },
  async test_wrong_key_is_401() {
    await expectError(await post(coord.url, '/v1/chat/completions', 'ig-000000000000-' + '0'.repeat(48), chat()), 401,
                      { code: 'invalid_api_key' });
    await expectError(await fetch(`${coord.url}/v1/models`, { headers: { Authorization: 'Bearer nope' } }), 401);
  },
  async test_revoked_key_is_401() {
    const k = createKey(coord.data, { name: 'short-lived' });
    assert.equal((await post(coord.url, '/v1/chat/completions', k, chat())).status, 200);
    cli(['keys', 'revoke', '--data', coord.data, k.split('-')[1]]);
    await expectError(await post(coord.url, '/v1/chat/completions', k, chat()), 401, { msg: /revoked/ });
  },
  async test_malformed_json_is_400() {
    await expectError(await post(coord.url, '/v1/chat/completions', key, '{"model":"edge",'), 400,
                      { code: 'invalid_json', msg: /not valid JSON.*line 1/ });
  },
  async test_wrong_types_are_400_naming_the_field() {
    await expectError(await post(coord.url, '/v1/chat/completions', key, chat({ temperature: 'hot' })), 400,
                      { param: 'temperature', msg: /must be a number/ });
    await expectError(await post(coord.url, '/v1/chat/completions', key, chat({ max_tokens: '5' })), 400,
                      { param: 'max_tokens', msg: /must be an integer/ });
    await expectError(await post(coord.url, '/v1/chat/completions', key, { model: 'edge', messages: 'hi' }), 400,
                      { param: 'messages', msg: /must be an array/ });
    await expectError(await post(coord.url, '/v1/completions', key, { model: 'edge', prompt: 5 }), 400,
                      { param: 'prompt', msg: /must be a string/ });
  },
  async test_invalid_fields_are_400_naming_the_field() {
    await expectError(await post(coord.url, '/v1/chat/completions', key, chat({ n: 2 })), 400, { param: 'n', msg: /must be 1/ });
    await expectError(await post(coord.url, '/v1/chat/completions', key, chat({ temperature: 2.5 })), 400, { param: 'temperature' });
    await expectError(await post(coord.url, '/v1/chat/completions', key, chat({ top_p: 0 })), 400, { param: 'top_p' });
    await expectError(await post(coord.url, '/v1/chat/completions', key, chat({ max_tokens: 0 })), 400, { param: 'max_tokens' });
    await expectError(await post(coord.url, '/v1/chat/completions', key, chat({ stop: ['a', 'b', 'c', 'd', 'e'] })), 400, { param: 'stop' });
    await expectError(await post(coord.url, '/v1/chat/completions', key, chat({ top_logprobs: 3 })), 400, { param: 'top_logprobs' });
    await expectError(await post(coord.url, '/v1/chat/completions', key, chat({ idlegrid: { route: 'moon' } })), 400, { param: 'idlegrid.route' });
    await expectError(await post(coord.url, '/v1/chat/completions', key, chat({ idlegrid: { deadline_ms: -1 } })), 400, { param: 'idlegrid.deadline_ms' });
    await expectError(await post(coord.url, '/v1/chat/completions', key, chat({ wat: 1 })), 400, { param: 'wat', msg: /unrecognized/ });
    await expectError(await post(coord.url, '/v1/chat/completions', key, { messages: [{ role: 'user', content: 'x' }] }), 400,
                      { param: 'model', code: 'missing_required_parameter' });
  },
  async test_invalid_utf8_is_400_with_offset() {
    const bytes = Buffer.concat([Buffer.from('{"model":"edge","prompt":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    await expectError(await post(coord.url, '/v1/completions', key, new Uint8Array(bytes)), 400, { msg: /UTF-8 \(byte offset 26\)/ });
  },
  async test_unknown_model_is_404() {
    await expectError(await post(coord.url, '/v1/chat/completions', key, chat({ model: 'gpt-9' })), 404,
                      { code: 'model_not_found', param: 'model', msg: /gpt-9/ });
    await expectError(await fetch(`${coord.url}/v1/models/gpt-9`, { headers: { Authorization: `Bearer ${key}` } }), 404);
  },
  async test_unknown_url_is_404_and_wrong_method_405() {
    await expectError(await fetch(`${coord.url}/v1/engines`, { headers: { Authorization: `Bearer ${key}` } }), 404, { code: 'unknown_url' });
    await expectError(await fetch(`${coord.url}/v1/chat/completions`, { headers: { Authorization: `Bearer ${key}` } }), 405);
  },
  async test_body_over_1mib_is_413() {
    const big = JSON.stringify({ model: 'edge', prompt: 'x'.repeat(2 * 1024 * 1024) });
    await expectError(await post(coord.url, '/v1/completions', key, big), 413, { code: 'request_too_large', msg: /limit is 1048576/ });
  },
  async test_rate_limit_is_429_with_retry_after() {
    const k = createKey(coord.data, { rate: 2, name: 'rate2' });
    assert.equal((await post(coord.url, '/v1/chat/completions', k, chat())).status, 200);
    assert.equal((await post(coord.url, '/v1/chat/completions', k, chat())).status, 200);
    const res = await post(coord.url, '/v1/chat/completions', k, chat());
    const ra = Number(res.headers.get('retry-after'));
    await expectError(res, 429, { code: 'rate_limit_exceeded', msg: /2 requests per minute/ });
    assert.ok(ra >= 1 && ra <= 60, `Retry-After ${ra}`);
  },
  async test_concurrency_limit_is_429_with_retry_after() {
    const k = createKey(coord.data, { concurrency: 1, name: 'conc1' });
    const first = await post(coord.url, '/v1/chat/completions', k, chat({ model: 'slow', max_tokens: 10, stream: true }));
    assert.equal(first.status, 200);
    const res = await post(coord.url, '/v1/chat/completions', k, chat());
    assert.ok(Number(res.headers.get('retry-after')) >= 1);
    await expectError(res, 429, { msg: /concurrent/ });
    const { done } = await readSSE(first);
    assert.ok(done);
    assert.equal((await post(coord.url, '/v1/chat/completions', k, chat())).status, 200, 'allowed again once the first ended');
  },
  async test_no_capacity_within_deadline_is_503() {
    // 200 tokens at 10 tok/s cannot fit in 1 s.
    await expectError(await post(coord.url, '/v1/completions', key,
                                 { model: 'slow', prompt: 'x', max_tokens: 200, idlegrid: { deadline_ms: 1000 } }), 503,
                      { code: 'no_capacity', msg: /deadline/ });
    // No node serves the model on the cloud route.
    await expectError(await post(coord.url, '/v1/completions', key,
                                 { model: 'edge', prompt: 'x', idlegrid: { route: 'cloud' } }), 503, { msg: /route cloud/ });
  },
  async test_stream_past_deadline_ends_with_error_event() {
    // The only "slow" node hangs (SIGSTOP) mid-stream: the link dies of silence, no
    // other node serves the model, the deadline passes: an explicit error event.
    const slow = nodes[1];
    const res = await post(coord.url, '/v1/completions', key,
                           { model: 'slow', prompt: 'x', max_tokens: 20, stream: true, idlegrid: { deadline_ms: 2500 } });
    assert.equal(res.status, 200);
    let stopped = false;
    const { events, done } = await readSSE(res, (ev, all) => {
      if (!stopped && all.length >= 3) { stopped = true; slow.kill('SIGSTOP'); }
    });
    slow.kill('SIGCONT');
    const last = events[events.length - 1];
    assert.ok(last.error, `last event is an error: ${JSON.stringify(last)}`);
    assert.match(last.error.message, /deadline/);
    assert.ok(!done, 'no [DONE] after an error');
    assert.ok(streamText(events).length > 0, 'tokens before the failure were delivered');
  },
  async test_garbage_does_not_disturb_other_clients() {
    const res = await post(coord.url, '/v1/completions', key, { model: 'edge', prompt: 'x', max_tokens: 60, stream: true });
    const reading = readSSE(res);
    const junk = [];
    for (let i = 0; i < 20; i++) {
      junk.push(post(coord.url, '/v1/chat/completions', key, Buffer.from([0xff, 0xfe, i])).then((r) => r.text()));
      junk.push(post(coord.url, '/v1/chat/completions', key, '{"model":' + '['.repeat(5000)).then((r) => r.text()));
    }
    await Promise.all(junk);
    const { events, done } = await reading;
    assert.ok(done, 'the concurrent stream completed');
    assert.equal(streamText(events).split(' t').length - 1, 60);
    const h = await (await fetch(`${coord.url}/healthz`)).json();
    assert.equal(h.status, 'ok');
  },
  async test_shutdown_answers_every_running_request() {
    // SIGTERM the coordinator mid-request: the stream ends with an error event and the
    // waiting non-streamed request gets a 503; nothing is left hanging.
    for (const n of nodes) n.kill('SIGCONT');
    // the hung "slow" node was dropped for silence above: a fresh one
    nodes.push(startNode(coord, { name: 'slow-2', model: 'slow', peer: true, rate: 10, slots: 1 }));
    await waitFor('a slow node', async () => (await (await fetch(`${coord.url}/v1/models/slow`,
                  { headers: { Authorization: `Bearer ${key}` } })).status) === 200, 10000);
    const streamRes = await post(coord.url, '/v1/completions', key, { model: 'slow', prompt: 'x', max_tokens: 50, stream: true });
    assert.equal(streamRes.status, 200);
    const plain = post(coord.url, '/v1/completions', key, { model: 'edge', prompt: 'x', max_tokens: 8000 });
    const reading = readSSE(streamRes, (ev, all) => { if (all.length === 2) coord.proc.kill('SIGTERM'); });
    const { events, done } = await reading;
    const last = events[events.length - 1];
    assert.ok(last.error && last.error.code === 'shutting_down', JSON.stringify(last));
    assert.ok(!done);
    await expectError(await plain, 503, { code: 'shutting_down' });
    const r = await coord.proc.exited;
    assert.equal(r.code, 0, `coordinator exit ${JSON.stringify(r)}`);
  },
  async teardown() {
    for (const n of nodes) { n.kill('SIGCONT'); await stop(n); }
  },
});
