import { formatAddress } from '../config/redact.js';
import type { GatewayConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';

/** What start-up reports once the data plane takes traffic: counts and addresses, never a secret. */
export function logStarted(logger: Logger, config: GatewayConfig, workers: number): void {
  for (const listener of config.listeners) {
    if (listener.upstream === null)
      logger.info({ listener: listener.name }, 'listener off (upstream set to off)');
  }
  const auth = {
    auth_method: config.authMethod,
    api_keys: config.apiKeys.length,
    basic_users: config.basicCredentials.length,
  };
  logger.info(auth, 'authentication configured');
  if (config.placeholderKeyInUse) warnPlaceholder(logger);
  logger.info(
    {
      env_file: config.envFile,
      workers,
      admin: formatAddress(config.admin),
      metrics: config.metricsListen === null ? 'off' : formatAddress(config.metricsListen),
      ...auth,
    },
    'edge-gateway started; edits to the env file apply live',
  );
}

/** At start-up and at every reload while the public placeholder key is accepted. */
export function warnPlaceholder(logger: Logger): void {
  logger.warn(
    'THE PLACEHOLDER API KEY IS ACCEPTED: anyone who has read the stock documentation can use this gateway. ' +
      'Set ENVOY_API_KEYS in the env file (edge-gateway gen-key makes a key).',
  );
}
