/** The agent's event lines: the schemas (./schema.ts) and the zod-free line format (./line.ts). */
export * from './schema.js';
export { EVENT_SCHEMA_VERSION, MODES, eventJsonIn, formatEventLine, formatEventLine as formatEvent, stampEvent, type EventBody, type Mode, type Stamped } from './line.js';
