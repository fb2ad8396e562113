/** The fleet layer: batches of numbers and the worker that drives them. */
export { batchStatus, listBatches } from './read.js';
export { BatchRunner, GroupCheckCache, noteBatchFinished, needOf, groupKey, type BatchEvent, type BatchRunnerOptions, type BatchRowStatus, type BatchSummary, type CodeRowResult, type FleetRow, type Need, onPremRows } from './runner.js';
export { Worker, type WorkerEvent, type WorkerOptions, type WorkerReport } from './worker.js';
export { BatchInputError, readRows, detectFormat, countOnPremRows, BATCH_COLUMNS, CODE_COLUMNS, ONPREM_REQUIRED_COLUMNS, type RowProblem } from './input.js';
