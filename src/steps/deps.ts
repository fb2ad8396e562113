/**
 * What every step actor gets from the runner. Steps are the only code that talks to Meta; the
 * machine decides what happens next from their output or their failure.
 */
import type { FailureInfo, Intent, PhoneNumberLike } from './shared.js';
import type { GraphClient } from '../graph/client.js';

/** Secrets live only in the runner's memory: never in the machine, the snapshot or the store. */
export interface Secrets {
  code?: string;
  pin?: string;
}

export interface StepDeps {
  client: GraphClient;
  secrets: Secrets;
  /** Resolves once the snapshot that records the current intent is on disk. */
  durable(): Promise<void>;
  /**
   * True when this intent may already have reached Meta: a later attempt after a transient
   * failure, or the attempt that was in flight when a previous process died.
   */
  mustReconcile(intent: Intent): boolean;
}

export type { FailureInfo, Intent, PhoneNumberLike };
