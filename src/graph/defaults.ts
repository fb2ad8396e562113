/** Defaults that do not need the client loaded (the CLI reads them at start-up). */
export const DEFAULT_GRAPH_URL = 'https://graph.facebook.com';
export const DEFAULT_API_VERSION = 'v23.0';
