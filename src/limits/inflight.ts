/**
 * The inflight= places of this process: how many requests of each credential are in progress.
 * Per gateway process by design (a count of open exchanges is only meaningful where they are
 * open): with WORKERS=N and R replicas a credential may have N × R × inflight at once.
 */
export class InflightCounter {
  private readonly inProgress = new Map<string, number>();

  /**
   * Takes one of `identity`'s `limit` places: the function that gives it back (idempotent), or
   * null when all are taken.
   */
  enter(identity: string, limit: number): (() => void) | null {
    const current = this.inProgress.get(identity) ?? 0;
    if (current >= limit) return null;
    this.inProgress.set(identity, current + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const now = (this.inProgress.get(identity) ?? 1) - 1;
      if (now <= 0) this.inProgress.delete(identity);
      else this.inProgress.set(identity, now);
    };
  }

  /** Requests of `identity` in progress now. */
  of(identity: string): number {
    return this.inProgress.get(identity) ?? 0;
  }
}
