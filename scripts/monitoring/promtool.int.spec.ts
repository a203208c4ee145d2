// Prometheus configuration, alert rules and rule unit tests, checked by the real promtool
// (Debian's prometheus package; .ci/run installs it), and the dashboard file kept in step
// with its generator.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DASHBOARD_FILE, renderDashboard, panels } from './dashboard.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function promtool(...args: string[]) {
  const result = spawnSync('promtool', args, { cwd: root, encoding: 'utf8' });
  if (result.error) throw new Error(`promtool is not installed (apt-get install prometheus): ${result.error.message}`);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('promtool', () => {
  it.each(['prometheus/prometheus.yml', 'prometheus/prometheus.local.yml'])('check config %s', (file) => {
    const { status, output } = promtool('check', 'config', file);
    expect(status, output).toBe(0);
    expect(output).toContain('SUCCESS');
  });

  it('check rules', () => {
    const { status, output } = promtool('check', 'rules', 'prometheus/rules/kes-outbox.yml');
    expect(status, output).toBe(0);
    expect(output).toMatch(/SUCCESS: 6 rules found/);
  });

  it('rule unit tests (promtool test rules)', () => {
    const { status, output } = promtool('test', 'rules', 'prometheus/tests/kes-outbox.test.yml');
    expect(status, output).toBe(0);
    expect(output).toContain('SUCCESS');
  });
});

describe('KES Outbox Overview dashboard', () => {
  it('the committed JSON is what the generator produces (run npm run dashboard:build)', () => {
    expect(readFileSync(DASHBOARD_FILE, 'utf8')).toBe(renderDashboard());
  });

  it('has the panels the monitoring issue asks for, each with a query', () => {
    const titles = panels.map((p) => p.title);
    for (const wanted of [
      'Relay up',
      'Pending events',
      'Oldest pending age',
      'Dispatch rate by event type',
      'Dispatch lag (insert → Kafka ack)',
      'Publish failures by reason',
      'Poison events',
      'Batch size',
      'Poll duration',
      'Consumer throughput',
      'DLQ rate',
      'Consumer lag',
    ]) {
      expect(titles).toContain(wanted);
    }
    for (const p of panels) expect(p.targets.length).toBeGreaterThan(0);
    const dashboard = JSON.parse(renderDashboard());
    expect(dashboard).toMatchObject({ uid: 'kes-outbox-overview', title: 'KES Outbox Overview' });
  });
});
