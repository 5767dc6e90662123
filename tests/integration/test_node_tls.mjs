// The node link over TLS: `idlegrid serve --tls-cert --tls-key` accepts nodes that dial
// with TLS and serves buyers through them; a node speaking plain TCP to it never
// becomes ready.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { assert, run, startCoordinator, createKey, startNode, waitNodes, post, tempDir, health, stop } from './grid.mjs';

let coord, key, nodes = [];

await run({
  async setup() {
    const dir = tempDir();
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
                             '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', join(dir, 'key.pem'),
                             '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    coord = await startCoordinator({ extra: ['--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')] });
    assert.match(coord.proc.out, /\(TLS\)/);
    key = createKey(coord.data);
  },
  async test_tls_node_serves_requests() {
    nodes.push(startNode(coord, { name: 'tls-node', peer: true, tls: true }));
    await waitNodes(coord.url, 1, 15000);
    const res = await post(coord.url, '/v1/completions', key, { model: 'edge', prompt: 'x', max_tokens: 5 });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).usage.completion_tokens, 5);
  },
  async test_plain_tcp_node_is_refused_by_a_tls_listener() {
    const plain = startNode(coord, { name: 'plain-node', peer: true });
    nodes.push(plain);
    await plain.exited;
    assert.equal((await health(coord.url)).nodes, 1, 'only the TLS node is connected');
  },
  async teardown() {
    for (const n of nodes) await stop(n);
    assert.equal((await stop(coord.proc)).code, 0);
  },
});
