import { type Logger, pino } from 'pino';

export type { Logger };

export interface LoggerOptions {
  readonly level: string;
  /** Human-readable lines (pino-pretty) instead of JSON. */
  readonly pretty: boolean;
}

/** Secret-bearing fields are redacted by pino itself in case one is ever passed by mistake. */
const REDACT_PATHS = [
  'password',
  'apiKey',
  'apiKeys',
  'key',
  'authorization',
  'headers.authorization',
  'headers["x-api-key"]',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
];

export function createLogger(options: LoggerOptions): Logger {
  return pino({
    level: options.level,
    base: { service: 'edge-gateway' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(options.pretty
      ? { transport: { target: 'pino-pretty', options: { colorize: process.stdout.isTTY, destination: 1 } } }
      : {}),
  });
}
