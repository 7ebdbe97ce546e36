import { startSinks } from './sinks.js';

/**
 * Entry point of the sink child process (its own process so that it has its own event loop and
 * its CPU is not charged to the harness). Prints one `SINK_PORTS {json}` line, then serves until killed.
 */
const ports = await startSinks();
process.stdout.write(`SINK_PORTS ${JSON.stringify(ports)}\n`);
