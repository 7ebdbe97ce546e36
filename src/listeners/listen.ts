import type { Server } from 'node:net';
import type { ListenAddress } from '../config/types.js';

/** Binds a listener's server; resolves once it listens, rejects with the bind error (EADDRINUSE, ...). */
export function listenOn(server: Server, { host, port }: ListenAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
