export { GraphSandbox, prng, FIXTURES, SCENARIOS, type ScenarioName, type SandboxOptions, type FaultRates, type OutboxEntry, type Exchange, type EndpointCounter } from './server.js';
