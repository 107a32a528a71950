// Serving state shared by grpc.health.v1, /readyz and the drain on SIGTERM: keygate is ready
// when its store answers and it is not shutting down. Listeners hear every change.
export type ServingState = 'SERVING' | 'NOT_SERVING';

export class HealthState {
  private storeProblem: string | null = 'starting';
  private draining = false;
  private readonly listeners = new Set<(s: ServingState) => void>();

  get state(): ServingState {
    return this.storeProblem === null && !this.draining ? 'SERVING' : 'NOT_SERVING';
  }

  /** Why keygate is not ready, or null when it is. */
  get problem(): string | null {
    if (this.draining) return 'shutting down';
    return this.storeProblem;
  }

  setStoreProblem(problem: string | null): void {
    this.update(() => (this.storeProblem = problem));
  }

  startDraining(): void {
    this.update(() => (this.draining = true));
  }

  onChange(listener: (s: ServingState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private update(change: () => void): void {
    const before = this.state;
    change();
    const after = this.state;
    if (after !== before) for (const l of this.listeners) l(after);
  }
}
