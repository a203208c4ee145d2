// The "KES Outbox Overview" Grafana dashboard, generated from typed code so every panel query
// is also available to tests (scripts/monitoring/dashboard.int.spec.ts runs each one against
// a real Prometheus). `npm run dashboard:build` writes grafana/dashboards/kes-outbox-overview.json.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const DASHBOARD_UID = 'kes-outbox-overview';
export const DATASOURCE = { type: 'prometheus', uid: 'kes-prometheus' } as const;

type Unit = 'short' | 's' | 'ops' | 'none' | 'bool_on_off';

export interface PanelSpec {
  title: string;
  kind: 'stat' | 'timeseries';
  unit: Unit;
  description: string;
  targets: { expr: string; legend: string }[];
  /** Grid position: width 1..24, height in rows. */
  w: number;
  h: number;
  thresholds?: { color: string; value: number | null }[];
}

const q = (p: number, metric: string) =>
  `histogram_quantile(${p}, sum by (le) (rate(${metric}_bucket[5m])))`;

export const panels: PanelSpec[] = [
  {
    title: 'Relay up',
    kind: 'stat',
    unit: 'short',
    description: 'Relay processes reporting kes_outbox_relay_up = 1 (0 or empty: no relay is publishing).',
    targets: [{ expr: 'sum(kes_outbox_relay_up)', legend: 'relays up' }],
    w: 4,
    h: 4,
    thresholds: [
      { color: 'red', value: null },
      { color: 'green', value: 1 },
    ],
  },
  {
    title: 'Pending events',
    kind: 'stat',
    unit: 'short',
    description: 'Outbox rows waiting to be published (same value on every relay, hence max).',
    targets: [{ expr: 'max(kes_outbox_pending_events)', legend: 'pending' }],
    w: 4,
    h: 4,
  },
  {
    title: 'Oldest pending age',
    kind: 'stat',
    unit: 's',
    description: 'Age of the oldest pending outbox row. Alert KesOutboxOldestPendingTooOld fires above 60 s.',
    targets: [{ expr: 'max(kes_outbox_oldest_pending_age_seconds)', legend: 'oldest pending' }],
    w: 4,
    h: 4,
    thresholds: [
      { color: 'green', value: null },
      { color: 'orange', value: 30 },
      { color: 'red', value: 60 },
    ],
  },
  {
    title: 'Poison events',
    kind: 'stat',
    unit: 'short',
    description: 'Rows parked as poison, and pending rows blocked behind them (strict per-aggregate order).',
    targets: [
      { expr: 'max(kes_outbox_poison_events)', legend: 'poison' },
      { expr: 'max(kes_outbox_blocked_events)', legend: 'blocked behind poison' },
    ],
    w: 6,
    h: 4,
    thresholds: [
      { color: 'green', value: null },
      { color: 'red', value: 1 },
    ],
  },
  {
    title: 'Consumer lag',
    kind: 'stat',
    unit: 'short',
    description: 'Messages of kes.tenders.v1 not yet processed by svc-tenders.workspace.',
    targets: [{ expr: 'sum(kes_consumer_lag)', legend: 'lag' }],
    w: 6,
    h: 4,
  },
  {
    title: 'Dispatch rate by event type',
    kind: 'timeseries',
    unit: 'ops',
    description: 'Events acknowledged by Kafka (acks=all) per second.',
    targets: [{ expr: 'sum by (event_type) (rate(kes_outbox_dispatched_total[1m]))', legend: '{{event_type}}' }],
    w: 12,
    h: 8,
  },
  {
    title: 'Dispatch lag (insert → Kafka ack)',
    kind: 'timeseries',
    unit: 's',
    description: 'From the outbox row insert (clock_timestamp) to the broker acknowledgement.',
    targets: [
      { expr: q(0.5, 'kes_outbox_dispatch_lag_seconds'), legend: 'p50' },
      { expr: q(0.95, 'kes_outbox_dispatch_lag_seconds'), legend: 'p95' },
      { expr: q(0.99, 'kes_outbox_dispatch_lag_seconds'), legend: 'p99' },
    ],
    w: 12,
    h: 8,
  },
  {
    title: 'Pending and oldest age over time',
    kind: 'timeseries',
    unit: 'short',
    description: 'Backlog of the outbox.',
    targets: [{ expr: 'max(kes_outbox_pending_events)', legend: 'pending' }],
    w: 12,
    h: 8,
  },
  {
    title: 'Publish failures by reason',
    kind: 'timeseries',
    unit: 'ops',
    description: 'Failed publish attempts per second (broker_unavailable, timeout, unknown_topic, record_too_large, ...).',
    targets: [{ expr: 'sum by (reason) (rate(kes_outbox_publish_failures_total[5m]))', legend: '{{reason}}' }],
    w: 12,
    h: 8,
  },
  {
    title: 'Batch size',
    kind: 'timeseries',
    unit: 'short',
    description: 'Rows per claimed batch (one Kafka request per batch).',
    targets: [
      { expr: 'sum(rate(kes_outbox_batch_size_sum[5m])) / sum(rate(kes_outbox_batch_size_count[5m]))', legend: 'mean' },
      { expr: q(0.99, 'kes_outbox_batch_size'), legend: 'p99' },
    ],
    w: 8,
    h: 8,
  },
  {
    title: 'Poll duration',
    kind: 'timeseries',
    unit: 's',
    description: 'Duration of the claim query.',
    targets: [
      { expr: q(0.5, 'kes_outbox_poll_duration_seconds'), legend: 'p50' },
      { expr: q(0.99, 'kes_outbox_poll_duration_seconds'), legend: 'p99' },
    ],
    w: 8,
    h: 8,
  },
  {
    title: 'Consumer throughput',
    kind: 'timeseries',
    unit: 'ops',
    description: 'Messages processed by the workspace projector per second (applied or duplicate).',
    targets: [{ expr: 'sum by (result) (rate(kes_consumer_processed_total[1m]))', legend: '{{result}}' }],
    w: 8,
    h: 8,
  },
  {
    title: 'DLQ rate',
    kind: 'timeseries',
    unit: 'ops',
    description: 'Messages sent to kes.tenders.v1.dlq per second, by reason.',
    targets: [{ expr: 'sum by (reason) (rate(kes_consumer_dlq_total[5m]))', legend: '{{reason}}' }],
    w: 12,
    h: 8,
  },
  {
    title: 'Consumer lag by partition',
    kind: 'timeseries',
    unit: 'short',
    description: 'kes_consumer_lag per partition of kes.tenders.v1.',
    targets: [{ expr: 'sum by (partition) (kes_consumer_lag)', legend: 'partition {{partition}}' }],
    w: 12,
    h: 8,
  },
];

export function buildDashboard(): Record<string, unknown> {
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  const built = panels.map((p, index) => {
    if (x + p.w > 24) {
      x = 0;
      y += rowHeight;
      rowHeight = 0;
    }
    const gridPos = { x, y, w: p.w, h: p.h };
    x += p.w;
    rowHeight = Math.max(rowHeight, p.h);
    return {
      id: index + 1,
      type: p.kind,
      title: p.title,
      description: p.description,
      datasource: DATASOURCE,
      gridPos,
      targets: p.targets.map((t, i) => ({
        refId: String.fromCharCode(65 + i),
        datasource: DATASOURCE,
        expr: t.expr,
        legendFormat: t.legend,
        range: true,
      })),
      fieldConfig: {
        defaults: {
          unit: p.unit,
          ...(p.thresholds ? { thresholds: { mode: 'absolute', steps: p.thresholds } } : {}),
        },
        overrides: [],
      },
      options:
        p.kind === 'stat'
          ? { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'background', graphMode: 'area' }
          : { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'none' } },
    };
  });
  return {
    uid: DASHBOARD_UID,
    title: 'KES Outbox Overview',
    description: 'KES transactional outbox: relay, backlog, dispatch lag, failures, poison, consumer and DLQ.',
    tags: ['kes', 'outbox', 'kafka'],
    timezone: 'browser',
    schemaVersion: 39,
    version: 1,
    editable: true,
    refresh: '10s',
    time: { from: 'now-30m', to: 'now' },
    templating: { list: [] },
    annotations: { list: [] },
    panels: built,
  };
}

export const DASHBOARD_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../grafana/dashboards/kes-outbox-overview.json');

export function renderDashboard(): string {
  return `${JSON.stringify(buildDashboard(), null, 2)}\n`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(DASHBOARD_FILE, renderDashboard());
  console.log(`wrote ${path.relative(process.cwd(), DASHBOARD_FILE)} (${panels.length} panels)`);
}
