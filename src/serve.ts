/** Runs the gateway until a signal stops it. Filled in by the core gateway work. */
export interface ServeOptions {
  readonly envFile?: string;
}

export async function serve(_options: ServeOptions): Promise<void> {
  throw new Error('serve is not implemented yet');
}
