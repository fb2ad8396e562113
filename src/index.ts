/**
 * waba-migrate as a library. A complete example is in README.md ("Library").
 */
export { MigrationEngine, NumberBusyError, ResendTooSoonError, RunInterruptedError, StartStoppedError, WrongStateError, buildInput } from './runner/engine.js';
export type { EngineOptions, StartRequest, ResumeRequest, TransitionInfo } from './runner/engine.js';
export { toView, nextAction, type MigrationView } from './runner/view.js';
export { InputError, parsePhone } from './runner/validate.js';
export { FileStore, MigrationNotFoundError, DuplicateMigrationError, type StoreOptions, type MigrationStore, type DocumentHandle, type ListedMigration } from './store/store.js';
export { MigrationLockedError, type LockOwner } from './store/lock.js';
export { StateDocumentError, SCHEMA_VERSION, type MigrationDocument, type HistoryEntry } from './store/document.js';
export { GraphClient, assertSafeGraphUrl, DEFAULT_GRAPH_URL, DEFAULT_API_VERSION, type CallSummary, type GraphClientOptions } from './graph/client.js';
export { GraphApiError, TRANSIENT_CODES, classifyTransient } from './graph/errors.js';
export { migrationMachine, STATE_NAMES, stateName, type StateName, type MigrationContext, type MigrationEvent } from '../machines/migration.js';
export { CHECK_NAMES, DEFAULT_POLICY, type CheckName, type CheckResult, type Policy, type MigrationInput } from '../machines/types.js';
export { GraphSandbox, FIXTURES, SCENARIOS } from './sandbox/index.js';
export { notifyOptions, deliverPending, deliverOne, deliverOutbox, backoffDelayMs, endpointKey, displayEndpoint, NOTIFY_DEFAULTS, type NotifyOptions, type DeliverySummary } from './notify/deliver.js';
export { addBatchCompleted, countStates, MIGRATION_EVENTS, BATCH_EVENTS, PAYLOAD_VERSION, type EventType, type BatchCounts, type NotificationSummary } from './notify/events.js';
export type { OutboxEntry, EventPayload } from './store/document.js';
export { RateBudget, ThrottledError, THROTTLE_CODES, type RateBudgetOptions, type WabaBudgetView, type ThrottleEvent } from './graph/rate-budget.js';
export { BatchRunner, Worker, BatchInputError, type BatchEvent, type BatchRunnerOptions, type BatchSummary, type BatchRowStatus, type CodeRowResult, type WorkerOptions, type WorkerEvent, type WorkerReport } from './batch/index.js';
export { runGroupChecks, type GroupChecks, type GroupCheckResult } from './steps/checks.js';
