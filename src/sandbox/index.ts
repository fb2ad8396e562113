export { GraphSandbox, prng, FIXTURES, SCENARIOS, type ScenarioName, type SandboxOptions, type FaultRates, type OutboxEntry, type Exchange, type EndpointCounter } from './server.js';
export { OnPremSandbox, ONPREM_FIXTURES, defaultApplicationSettings, type OnPremSandboxOptions } from './onprem.js';
export { SandboxRateLimiter, DEFAULT_RATE_LIMIT, type RateLimitOptions, type RateDecision } from './rate-limiter.js';
