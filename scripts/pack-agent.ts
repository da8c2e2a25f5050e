// npm's prepack step: writes the agent bundle into dist/ so the packed imagepe builds its PE
// without esbuild or the agent's sources.
import { writeShippedAgentBundle } from '../builder/agent-bundle.js';

const out = await writeShippedAgentBundle();
process.stdout.write(`agent bundle: ${out}\n`);
