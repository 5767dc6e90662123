// test_failover.mjs with real `idlegrid node` processes on the bundled edge model:
// the engine's resume makes the stream after a SIGKILL equal the undisturbed one.
process.env.IG_REAL_NODES = '1';
await import('./test_failover.mjs');
