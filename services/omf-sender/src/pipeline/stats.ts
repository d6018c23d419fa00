/** What this instance did for each endpoint (pipelines and SendOmf), for GetEndpointStatus. */
export interface EndpointCounters {
  sentEvents: number;
  sentMessages: number;
  failedEvents: number;
  failedMessages: number;
  /** Events dead-lettered because they needed a new container beyond OMF_MAX_CONTAINERS_PER_ENDPOINT. */
  quotaRefusedEvents: number;
  lastError: string;
  lastErrorTime: Date | undefined;
  lastSuccessTime: Date | undefined;
}

export class EndpointStats {
  private readonly byEndpoint = new Map<string, EndpointCounters>();

  get(id: string): EndpointCounters {
    let c = this.byEndpoint.get(id);
    if (!c) {
      c = {
        sentEvents: 0,
        sentMessages: 0,
        failedEvents: 0,
        failedMessages: 0,
        quotaRefusedEvents: 0,
        lastError: "",
        lastErrorTime: undefined,
        lastSuccessTime: undefined,
      };
      this.byEndpoint.set(id, c);
    }
    return c;
  }

  success(id: string, counts: { events?: number; messages?: number }): void {
    const c = this.get(id);
    c.sentEvents += counts.events ?? 0;
    c.sentMessages += counts.messages ?? 0;
    c.lastSuccessTime = new Date();
  }

  /** A failure: counted when `counts` says so (dead letters, failed SendOmf), always remembered as the last error. */
  failure(id: string, error: string, counts: { events?: number; messages?: number } = {}): void {
    const c = this.get(id);
    c.failedEvents += counts.events ?? 0;
    c.failedMessages += counts.messages ?? 0;
    c.lastError = error;
    c.lastErrorTime = new Date();
  }

  quotaRefused(id: string, events: number): void {
    this.get(id).quotaRefusedEvents += events;
  }
}
