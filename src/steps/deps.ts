/**
 * What every step actor gets from the runner. Steps are the only code that talks to Meta; the
 * machine decides what happens next from their output or their failure.
 */
import type { FailureInfo, Intent, PhoneNumberLike } from './shared.js';
import type { GraphClient } from '../graph/client.js';
import type { OnPremClient } from '../onprem/client.js';
import type { GroupChecks } from './checks.js';

/** Secrets live only in the runner's memory: never in the machine, the snapshot or the store. */
export interface Secrets {
  code?: string;
  pin?: string;
  /** On-Premises path: the backup password (env/file/prompt) and the backup blob it made. */
  backupPassword?: string;
  backupData?: string;
  /** On-Premises path: the webhook override URL in full (its query may hold a shared secret)
   *  and the verify token for it. */
  webhookUrl?: string;
  webhookVerifyToken?: string;
}

export interface StepDeps {
  client: GraphClient;
  secrets: Secrets;
  /** The On-Premises API client (On-Premises path only). */
  onprem?: OnPremClient | null;
  /** Shared prerequisite checks of this migration's group (batch runs); see checks.ts. */
  groupChecks?: GroupChecks;
  /** Resolves once the snapshot that records the current intent is on disk and this process
   *  still holds the migration's lock (else throws: it must not send anything more). */
  durable(): Promise<void>;
  /**
   * True when this intent may already have reached Meta: a later attempt after a transient
   * failure, or the attempt that was in flight when a previous process died.
   */
  mustReconcile(intent: Intent): boolean;
  /** True only for the attempt that was in flight when a previous process died (its request
   *  may or may not have been sent). */
  wasInFlight(intent: Intent): boolean;
}

export type { FailureInfo, Intent, PhoneNumberLike };
