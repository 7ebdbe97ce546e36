import { connect, createServer, type Socket } from 'node:net';

/**
 * The runtime's floor, as a reference contender of the benchmark (issue 13): a TCP relay that
 * copies bytes between the client's socket and a connection to the upstream, `data` → `write`
 * with backpressure both ways. No HTTP, no authentication, no header rules: whatever a proxy
 * costs beyond this is the price of its HTTP machinery and its features, not of Node moving bytes.
 *
 *   node bench/tcp-relay.ts <listen port> <upstream host> <upstream port>
 */

const [listenPort, upstreamHost, upstreamPort] = process.argv.slice(2);
if (!listenPort || !upstreamHost || !upstreamPort) {
  process.stderr.write('usage: tcp-relay.ts <listen port> <upstream host> <upstream port>\n');
  process.exit(2);
}

/** Copies `from` into `to`, pausing `from` while `to` has more buffered than it wants. */
function copy(from: Socket, to: Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  from.on('end', () => to.end());
}

const server = createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host: upstreamHost, port: Number(upstreamPort), noDelay: true });
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
  copy(client, upstream);
  copy(upstream, client);
});
server.listen(Number(listenPort), '127.0.0.1', () =>
  process.stdout.write(`tcp relay listening on ${listenPort}\n`),
);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
