// bench/llamacpp/bench.mjs — llama.cpp measured on this machine through node-llama-cpp's
// API, the way `idlegrid bench` measures idlegrid (and llama-bench's pp/tg tests do),
// plus llama.cpp's greedy tokens for the agreement check with idlegrid. llama.cpp comes
// as the prebuilt CPU libraries that node-llama-cpp ships in its platform packages
// (installed by scripts/bench-deps.sh; nothing is downloaded or built here: build
// "never", gpu false). bench/run.sh takes its reference figures from llama-bench built
// against the same libraries (build-llama-bench.sh): node-llama-cpp's addon attaches no
// ggml threadpool, so each llama_decode here starts and joins its worker threads, which
// llama-bench (and llama-cli, llama-server) do not; this is the cross-check.
//
//   node bench.mjs -m MODEL [--threads N] [--prompt P] [--gen G] [--repeat R]
//                  [--flash-attn auto|on|off] [--check-gen K]
//
// Prints one JSON object on stdout. What is timed:
//   - prefill: one llama_decode of the whole P-token prompt in one batch (n_batch =
//     n_ubatch = P) from an empty KV cache, logits for the last token only; the timer
//     runs from filling the batch to the resolution of the decode's promise.
//   - decode: G llama_decode calls of one token each from an empty cache, each computing
//     the logits of its token (output matrix included, like llama-bench's tg). No
//     sampling is timed: the tokens fed are the greedy continuation found beforehand in
//     the untimed check below (so the computation is that of `idlegrid bench`, which
//     feeds each step's argmax); llama-bench's tg feeds tokens without sampling too.
//   - median of R runs after one warm-up run of each.
// node-llama-cpp's public sequence API queues evaluations and dispatches them on a
// later event-loop turn with JS-side batching; to keep that out of the figures this
// calls the addon's own context object (LlamaContext._ctx: initBatch, addToBatch,
// decodeBatch), which is a thin N-API wrapper around llama_batch + llama_decode run on a
// libuv worker thread. That hop (queue the work, wake the worker, resolve the promise
// on the main thread) is still inside the timed loop; it is measured against llama.cpp's
// own perf counters (llama_perf_context: t_eval, the time inside llama_decode) and
// reported as js_overhead_us_per_token, with decode_tok_s_internal (llama.cpp's own
// clock) beside decode_tok_s (the wall clock). The addon's internal names are pinned by
// the exact node-llama-cpp version in package-lock.json.
//
// The check (untimed): greedy decoding (llama.cpp's greedy sampler) of the same
// prompt ids that `idlegrid bench` uses — P pseudo-random ids after BOS, prefilled in
// one batch, then K greedy tokens — and greedy decoding from BOS alone for G tokens
// (idlegrid bench's decode sequence). bench/run.sh compares both with idlegrid's
// (build/bench_greedy) on the same file.
import { spawnSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const USAGE =
    "usage: node bench.mjs -m MODEL [--threads N] [--prompt P] [--gen G] [--repeat R] " +
    "[--flash-attn auto|on|off] [--check-gen K]";

function parseArgs(argv) {
    const o = { model: null, threads: 2, prompt: 313, gen: 128, repeat: 5, flashAttn: "auto", checkGen: 16 };
    const ints = { "--threads": "threads", "-t": "threads", "--prompt": "prompt", "-p": "prompt",
                   "--gen": "gen", "-n": "gen", "--repeat": "repeat", "-r": "repeat",
                   "--check-gen": "checkGen" };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const v = argv[i + 1];
        if (a === "-m" || a === "--model") { o.model = v; i++; }
        else if (a === "--flash-attn") { o.flashAttn = v; i++; }
        else if (a in ints) {
            const n = Number(v);
            if (!Number.isInteger(n) || n < 0 || n > 100000) throw new Error(`${a}: '${v}' is not a count`);
            o[ints[a]] = n; i++;
        } else if (a === "-h" || a === "--help") { console.log(USAGE); process.exit(0); }
        else throw new Error(`unknown argument '${a}'\n${USAGE}`);
    }
    if (!o.model) throw new Error(`-m MODEL is required\n${USAGE}`);
    if (!["auto", "on", "off"].includes(o.flashAttn)) throw new Error(`--flash-attn: '${o.flashAttn}' is not auto, on or off`);
    if (o.threads < 1 || o.prompt < 1 || o.gen < 1 || o.repeat < 1 || o.repeat > 100)
        throw new Error("--threads, --prompt, --gen must be >= 1 and --repeat 1..100");
    return o;
}

// The prompt of `idlegrid bench` (src/cli/cmd_bench.c, make_prompt): splitmix64 ids
// modulo the vocabulary, the first replaced by BOS when there is one.
function makePrompt(n, nVocab, bos) {
    const M = (1n << 64n) - 1n;
    let s = 0x9e3779b97f4a7c15n;
    const out = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
        s = (s + 0x9e3779b97f4a7c15n) & M;
        let z = s;
        z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
        z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
        z ^= z >> 31n;
        out[i] = Number(z % BigInt(nVocab));
    }
    if (bos != null && bos >= 0 && n > 0) out[0] = bos;
    return out;
}

const median = (v) => { const s = [...v].sort((a, b) => a - b); const m = s.length >> 1;
                        return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

async function main() {
    const o = parseArgs(process.argv.slice(2));
    // One libuv worker thread: every llama_decode then runs on the same OS thread, as in
    // a C program, instead of hopping among libuv's four workers. The pool's size is
    // fixed when it starts, so the script runs itself again with it set.
    if (process.env.UV_THREADPOOL_SIZE !== "1") {
        const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), ...process.argv.slice(2)],
                            { stdio: "inherit", env: { ...process.env, UV_THREADPOOL_SIZE: "1" } });
        process.exit(r.status ?? 1);
    }
    const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
    const fileBytes = statSync(o.model).size;

    // Log lines arrive through a thread-safe callback; at "warn" nothing is logged per
    // decode, so logging costs nothing in the timed loops. The perf print is "info": the
    // level is raised only around it.
    const logs = [];
    const llama = await getLlama({
        gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true,
        progressLogs: false, maxThreads: o.threads,
        logLevel: LlamaLogLevel.warn, logger: (level, msg) => logs.push(msg),
    });
    const model = await llama.loadModel({ modelPath: o.model, gpuLayers: 0, useMmap: true });
    const ctxSize = o.prompt + Math.max(o.gen, o.checkGen) + 16;
    const context = await model.createContext({
        contextSize: ctxSize, batchSize: o.prompt, sequences: 1, threads: o.threads,
        flashAttention: o.flashAttn === "auto" ? "auto" : o.flashAttn === "on", // llama.cpp default: auto
        performanceTracking: true,
    });
    const ctx = context._ctx; // the addon's context: see the comment at the top
    ctx.setThreads(o.threads);
    const threadsInLlama = ctx.getThreads(); // llama_n_threads(ctx)
    if (threadsInLlama !== o.threads)
        throw new Error(`llama.cpp runs ${threadsInLlama} threads, not the ${o.threads} asked for`);

    // The vocabulary: the rows of the embedding table (what idlegrid calls n_vocab).
    const embd = model.fileInfo.tensorInfo?.find((t) => t.name === "token_embd.weight");
    const vocab = Number(embd?.dimensions?.[1] ?? model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length ?? 0);
    if (!vocab) throw new Error("cannot tell the vocabulary size of the model");
    const bos = model.tokens.bos;
    const prompt = makePrompt(o.prompt, vocab, bos);
    const SEQ = 0;

    const sampler = new llama._bindings.AddonSampler(model._model);
    sampler.applyConfig({ temperature: 0 }); // llama.cpp's greedy sampler
    async function greedyAfter(tokens, k) {
        ctx.disposeSequence(SEQ); // llama_memory_seq_rm(seq, -1, -1): an empty cache
        ctx.initBatch(tokens.length);
        const li = ctx.addToBatch(SEQ, 0, tokens, Uint32Array.of(tokens.length - 1));
        await ctx.decodeBatch();
        const out = [];
        let next = await ctx.sampleToken(li[0], sampler);
        let pos = tokens.length;
        for (let i = 0; i < k; i++) {
            out.push(next);
            if (i === k - 1) break;
            ctx.initBatch(1);
            const l = ctx.addToBatch(SEQ, pos++, Uint32Array.of(next), Uint32Array.of(0));
            await ctx.decodeBatch();
            next = await ctx.sampleToken(l[0], sampler);
        }
        return out;
    }

    // ---- the check (untimed) ----
    const greedyPrompt = await greedyAfter(prompt, o.checkGen);
    const bosOnly = Uint32Array.of(bos != null && bos >= 0 ? bos : prompt[0]);
    const greedyBos = await greedyAfter(bosOnly, o.gen);
    // The decode runs feed BOS then the greedy continuation: idlegrid bench's sequence.
    const decodeFeed = Uint32Array.from([bosOnly[0], ...greedyBos.slice(0, o.gen - 1)]);

    async function runPrefill() {
        ctx.disposeSequence(SEQ);
        const t0 = nowMs();
        ctx.initBatch(prompt.length); // logits for the last token only, as idlegrid bench
        ctx.addToBatch(SEQ, 0, prompt, Uint32Array.of(prompt.length - 1));
        await ctx.decodeBatch();
        return o.prompt / ((nowMs() - t0) / 1e3);
    }
    async function runDecode() {
        ctx.disposeSequence(SEQ);
        const one = new Uint32Array(1);
        const logit0 = Uint32Array.of(0);
        const t0 = nowMs();
        for (let i = 0; i < o.gen; i++) {
            one[0] = decodeFeed[i];
            ctx.initBatch(1);
            ctx.addToBatch(SEQ, i, one, logit0);
            await ctx.decodeBatch();
        }
        return o.gen / ((nowMs() - t0) / 1e3);
    }

    // llama.cpp's own clock: llama_perf_context_print (then reset) through the logger.
    async function perfPrint() {
        logs.length = 0;
        llama.logLevel = LlamaLogLevel.info;
        ctx.printTimings();
        for (let i = 0; i < 50 && !/(?<!prompt )eval time[^\n]*runs/.test(logs.join("")); i++)
            await new Promise((r) => setTimeout(r, 10));
        llama.logLevel = LlamaLogLevel.warn;
        const text = logs.join("");
        if (process.env.IG_LLAMACPP_DEBUG) process.stderr.write(text);
        const num = (re) => { const m = re.exec(text); return m ? Number(m[1]) : null; };
        return {
            promptMs: num(/prompt eval time\s*=\s*([\d.]+) ms/), promptTokens: num(/prompt eval time\s*=\s*[\d.]+ ms\s*\/\s*(\d+) tokens/),
            evalMs: num(/(?<!prompt )eval time\s*=\s*([\d.]+) ms/), evalRuns: num(/(?<!prompt )eval time\s*=\s*[\d.]+ ms\s*\/\s*(\d+) runs/),
        };
    }

    await runPrefill(); // warm-up
    await runDecode();
    await perfPrint(); // drop the counters of the check and the warm-up
    const prefillRuns = [];
    for (let r = 0; r < o.repeat; r++) prefillRuns.push(await runPrefill());
    const prefillPerf = await perfPrint();
    const decodeRuns = [];
    const cpu0 = process.cpuUsage();
    const wall0 = nowMs();
    for (let r = 0; r < o.repeat; r++) decodeRuns.push(await runDecode());
    const wallMs = nowMs() - wall0;
    const cpu = process.cpuUsage(cpu0);
    const decodePerf = await perfPrint();

    const decodeWallMs = decodeRuns.reduce((s, v) => s + (o.gen / v) * 1e3, 0);
    const evalOk = decodePerf.evalMs != null && decodePerf.evalRuns === o.gen * o.repeat;

    // Which CPU variant ggml chose at load time: the libggml-cpu-*.so mapped in.
    const maps = readFileSync("/proc/self/maps", "utf8");
    const variants = [...new Set([...maps.matchAll(/\S*libggml-cpu-([\w.-]+?)\.so\S*/g)].map((m) => m[1]))];
    const here = dirname(fileURLToPath(import.meta.url));
    const pkgVersion = JSON.parse(readFileSync(join(here, "node_modules/node-llama-cpp/package.json"), "utf8")).version;
    const libPath = [...maps.matchAll(/(\S*libllama[\w.-]*\.so\S*)/g)].map((m) => m[1])[0] ?? null;

    const result = {
        engine: "llama.cpp",
        model: o.model,
        file_bytes: fileBytes,
        threads: threadsInLlama,
        prompt_tokens: o.prompt,
        gen_tokens: o.gen,
        runs: o.repeat,
        batch: context.batchSize,
        flash_attn: o.flashAttn,
        prefill_tok_s: median(prefillRuns),
        decode_tok_s: median(decodeRuns),
        prefill_runs_tok_s: prefillRuns,
        decode_runs_tok_s: decodeRuns,
        prefill_tok_s_internal: prefillPerf.promptMs ? prefillPerf.promptTokens / (prefillPerf.promptMs / 1e3) : null,
        decode_tok_s_internal: evalOk ? decodePerf.evalRuns / (decodePerf.evalMs / 1e3) : null,
        js_overhead_us_per_token: evalOk ? ((decodeWallMs - decodePerf.evalMs) * 1e3) / decodePerf.evalRuns : null,
        decode_cpu_per_wall: (cpu.user + cpu.system) / 1e3 / wallMs,
        ggml_cpu_variant: variants.length === 1 ? variants[0] : variants.join(","),
        system_info: llama.systemInfo.trim(),
        node_llama_cpp: pkgVersion,
        llama_cpp_release: `${llama.llamaCppRelease.repo}@${llama.llamaCppRelease.release}`,
        llama_lib: libPath ? basename(libPath) : null,
        prompt_ids: Array.from(prompt),
        greedy_after_prompt: greedyPrompt,
        greedy_from_bos: greedyBos,
        warnings: logs.filter((l) => /warn|error/i.test(l)).slice(0, 10),
    };
    console.log(JSON.stringify(result));
    sampler.dispose();
    await context.dispose();
    await model.dispose();
    await llama.dispose();
}

main().catch((e) => {
    process.stderr.write(`llamacpp bench: ${e?.message ?? e}\n`);
    process.exit(1);
});
