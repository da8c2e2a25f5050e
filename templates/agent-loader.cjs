'use strict';
// imagepe agent loader. /init runs `node --hash-seed=1 agent-loader.cjs`: it compiles the agent
// (agent.cjs beside it) with the V8 code cache the build made with this same Node.js binary
// (agent.cache), so a fresh machine's CPU (or an emulated one) does not parse and compile the
// agent's 900 KB before it can say ready. V8 checks the cache against its version, the source
// and the flags, and compiles from scratch when it does not fit: a wrong cache costs time only.
// The fixed hash seed is what makes the cache the same bytes on every build (V8 includes it in
// the flags it checks); the PE runs nothing but the agent, on input its operator provides.
const { readFileSync, writeFileSync } = require('node:fs');
const { createRequire, wrap } = require('node:module');
const { join } = require('node:path');
const { Script } = require('node:vm');

const file = join(__dirname, 'agent.cjs');
// Set by the build: write the cache to this path instead of starting the agent.
const making = process.env.IMAGEPE_MAKE_CODE_CACHE;
let cachedData;
if (!making) {
  try {
    cachedData = readFileSync(join(__dirname, 'agent.cache'));
  } catch {
    cachedData = undefined;
  }
}
// The name the code is compiled under is part of the cache's bytes: always the PE's path, so the
// build (which runs this from a work folder) makes the same cache every time.
const script = new Script(wrap(readFileSync(file, 'utf8')), { filename: '/usr/share/imagepe/agent.cjs', cachedData });
process.env.IMAGEPE_CODE_CACHE = cachedData === undefined ? 'none' : script.cachedDataRejected ? 'rejected' : 'accepted';
if (making) globalThis.imagepeHoldAgent = true;
const agentModule = { exports: {}, id: file, filename: file, loaded: false };
script.runInThisContext()(agentModule.exports, createRequire(file), agentModule, file, __dirname);
// After the top level ran, the cache also holds the functions it compiled on the way.
if (making) writeFileSync(making, script.createCachedData());
