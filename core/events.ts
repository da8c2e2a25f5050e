import type { Progress } from './progress.js';

/**
 * Progress is data: library code emits typed events and never prints; the CLI renders them
 * (listr2 bars on a terminal, JSON lines with --json) and the agent forwards them to the serial
 * console. Every event has a `type`; the rest of its shape depends on it.
 */
export interface ProgressEvent extends Progress {
  type: 'progress';
  /** The operation this belongs to: "capture", "apply", "export", ... */
  operation: string;
}

export interface MessageEvent {
  type: 'message';
  operation: string;
  level: 'info' | 'warning';
  text: string;
}

export interface StepEvent {
  type: 'step';
  operation: string;
  step: string;
  status: 'started' | 'done' | 'skipped';
  detail?: string;
}

export type ImagepeEvent = ProgressEvent | MessageEvent | StepEvent;
export type EventSink = (event: ImagepeEvent) => void;

export const ignoreEvents: EventSink = () => {};
