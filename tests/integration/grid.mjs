// grid.mjs — shared helpers of the grid's integration tests: start a coordinator
// (`idlegrid serve` or `idlegrid up`) and nodes as real processes on free loopback
// ports, wait for them, talk to the API with fetch, and clean up whatever happens.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';

export const BIN = process.env.IG_BIN || 'build/idlegrid';
export const TESTPEER = process.env.IG_TESTPEER || 'build/ig_testpeer';
export const MODELS = process.env.IG_MODELS || 'models';

const procs = new Set();
const dirs = [];

function cleanup() {
  for (const p of procs) {
    try { p.kill('SIGKILL'); } catch {}
  }
  for (const d of dirs) {
    try { rmSync(d, { recursive: true, force: true }); } catch {}
  }
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { cleanup(); process.exit(1); });

export function tempDir(prefix = 'idlegrid-test-') {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

// Spawns a process; collects its output; resolves `exited` when it ends.
export function start(cmd, args, { quiet = true } = {}) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.add(p);
  p.out = '';
  p.err = '';
  p.stdout.on('data', (d) => { p.out += d; });
  p.stderr.on('data', (d) => { p.err += d; if (!quiet) process.stderr.write(d); });
  p.exited = new Promise((resolve) => p.on('exit', (code, signal) => { procs.delete(p); resolve({ code, signal }); }));
  return p;
}

export async function waitFor(what, fn, timeoutMs = 30000, everyMs = 50) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// Tests with real nodes need the node agent: a binary without it fails them loudly.
export function requireNodeAgent() {
  try {
    execFileSync(BIN, ['node', '--help'], { stdio: 'ignore' });
  } catch (e) {
    console.log(`FAIL: '${BIN} node --help' did not run: ${e.message}`);
    process.exit(1);
  }
}

export function cli(args) {
  return execFileSync(BIN, args, { encoding: 'utf8' }).trim();
}

// A coordinator (`idlegrid serve`) with its own data dir and free ports.
export async function startCoordinator({ heartbeatMs = 500, extra = [] } = {}) {
  const data = tempDir();
  const p = start(BIN, ['serve', '--data', data, '--listen', '127.0.0.1:0', '--node-listen', '127.0.0.1:0',
                        '--heartbeat-ms', String(heartbeatMs), ...extra]);
  const m = await waitFor('coordinator to listen', () => /API (http:\/\/\S+)\/v1\s+nodes ([0-9.:]+)/.exec(p.out), 15000);
  return { proc: p, data, url: m[1], nodeAddr: m[2] };
}

export function createKey(data, { rate = 0, concurrency = 0, name = 'test' } = {}) {
  return cli(['keys', 'create', '--data', data, '--name', name, '--rate', String(rate),
              '--concurrency', String(concurrency)]);
}

// A node process: the real agent (`idlegrid node`) or the deterministic test peer.
export function startNode(coord, { name, model = 'edge', cls = 'edge', peer = false, rate = 200, slots = 4,
                                   modelFile = null, threads = 1, tls = false, extra = [] } = {}) {
  const token = cli(['nodes', 'token', '--data', coord.data]);
  const dir = tempDir('idlegrid-node-');
  if (peer) {
    return start(TESTPEER, ['--coordinator', coord.nodeAddr, '--model', model, '--class', cls, '--data', dir,
                            '--enroll-token', token, '--name', name, '--rate', String(rate), '--slots', String(slots),
                            ...(tls ? ['--tls', '1'] : [])]);
  }
  return start(BIN, ['node', '--coordinator', coord.nodeAddr, '--model', modelFile || join(MODELS, `${model}.gguf`),
                     '--class', cls, '--data', dir, '--enroll-token', token, '--name', name,
                     '--threads', String(threads), '--slots', String(slots), ...extra]);
}

export async function health(url) {
  const r = await fetch(`${url}/healthz`);
  return r.json();
}

export async function waitNodes(url, n, timeoutMs = 60000) {
  await waitFor(`${n} nodes`, async () => (await health(url)).nodes >= n, timeoutMs);
}

export async function post(url, path, key, body, headers = {}) {
  return fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(key ? { Authorization: `Bearer ${key}` } : {}), ...headers },
    body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
}

// Reads an SSE response to the end: the parsed data events, and whether [DONE] came.
export async function readSSE(res, onEvent = null) {
  const events = [];
  let done = false;
  let buf = '';
  const dec = new TextDecoder();
  for await (const chunk of res.body) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of block.split('\n')) {
        if (!line.startsWith('data: ')) continue;
        const data = line.slice(6);
        if (data === '[DONE]') { done = true; continue; }
        const ev = JSON.parse(data);
        events.push(ev);
        if (onEvent) await onEvent(ev, events);
      }
    }
  }
  return { events, done };
}

export function streamText(events) {
  return events.map((e) => (e.choices && e.choices[0] ? (e.choices[0].text ?? e.choices[0].delta?.content ?? '') : '')).join('');
}

export async function metrics(url) {
  return (await fetch(`${url}/metrics`)).text();
}

export function metricValues(text, name) {
  const out = {};
  const re = new RegExp(`^${name}\\{node="([^"]+)"\\} (\\d+)`, 'gm');
  let m;
  while ((m = re.exec(text))) out[m[1]] = Number(m[2]);
  return out;
}

export async function stop(p, signal = 'SIGTERM', timeoutMs = 10000) {
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill(signal);
  const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  const r = await p.exited;
  clearTimeout(t);
  return r;
}

// Runs named test functions in order; any failure fails the process.
export async function run(tests) {
  let failed = 0;
  const deadline = setTimeout(() => { console.error('test file timed out'); cleanup(); process.exit(1); }, 170000);
  for (const [name, fn] of Object.entries(tests)) {
    const t0 = Date.now();
    try {
      await fn();
      console.log(`PASS ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${e.stack || e}`);
    }
  }
  clearTimeout(deadline);
  cleanup();
  process.exit(failed ? 1 : 0);
}

export { assert };
