import { AggregationTemporality, MetricReader } from '@opentelemetry/sdk-metrics';

/** A metric reader tests collect from on demand. */
export class TestMetricReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}

  /** Each metric's points summed (histograms: their counts). */
  async values(): Promise<Record<string, number>> {
    const { resourceMetrics } = await this.collect();
    const out: Record<string, number> = {};
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const metric of scope.metrics) {
        for (const point of metric.dataPoints) {
          const value = point.value as number | { count: number };
          out[metric.descriptor.name] = (out[metric.descriptor.name] ?? 0) + (typeof value === 'number' ? value : value.count);
        }
      }
    }
    return out;
  }
}
