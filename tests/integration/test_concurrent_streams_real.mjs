// test_concurrent_streams.mjs with real `idlegrid node` processes on models/edge.gguf.
process.env.IG_REAL_NODES = '1';
await import('./test_concurrent_streams.mjs');
