import { runAgent } from './main.js';

// The PE's entry point, bundled as agent.cjs and started by templates/agent-loader.cjs. While the
// build makes the loader's code cache it runs this module's top level with the agent held back.
if (!(globalThis as { imagepeHoldAgent?: boolean }).imagepeHoldAgent) {
  void runAgent().then((status) => {
    process.exitCode = status;
  });
}
