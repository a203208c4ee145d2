// The operator scripts run as real processes: kafka:kes-smoke against the real broker, and
// free-port against a real listening process.
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createTopics, testBrokers, testKafka, uniqueTopic } from '@kvary/testing/kafka';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function runSmoke(env: Record<string, string>) {
  const started = Date.now();
  const result = spawnSync(process.execPath, ['--conditions=kvary-source', '--import', 'tsx', 'scripts/kafka-kes-smoke.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    encoding: 'utf8',
    timeout: 30000,
  });
  const lines = result.stdout.trim().split('\n');
  return { status: result.status, json: JSON.parse(lines.at(-1) ?? '{}'), elapsedMs: Date.now() - started, stderr: result.stderr };
}

describe('kafka:kes-smoke', () => {
  it('round-trips a probe through the real broker and reports the cluster id', async () => {
    const smokeTopic = uniqueTopic('kes.smoke');
    await createTopics(testKafka(), [
      { topic: 'kes.tenders.v1', numPartitions: 3 },
      { topic: 'kes.tenders.v1.dlq', numPartitions: 3 },
      { topic: smokeTopic, numPartitions: 1 },
    ]);
    const { status, json, stderr } = runSmoke({ KAFKA_BROKERS: testBrokers().join(','), KES_SMOKE_TOPIC: smokeTopic });
    expect(status, stderr).toBe(0);
    expect(json).toMatchObject({ ok: true, topic: smokeTopic });
    expect(json.clusterId).toMatch(/\S{10,}/);
    expect(json.roundTripMs).toBeGreaterThanOrEqual(0);
  });

  it('with the broker down prints ok:false with the reason and exits 1 within 15 s', () => {
    const { status, json, elapsedMs } = runSmoke({ KAFKA_BROKERS: '127.0.0.1:1' });
    expect(status).toBe(1);
    expect(json).toMatchObject({ ok: false, step: 'connect' });
    expect(json.error).toMatch(/ECONNREFUSED|connect/i);
    expect(elapsedMs).toBeLessThan(15000);
  });
});

describe('free-port', () => {
  it('stops the process listening on a port and names it', async () => {
    const child = spawn(process.execPath, ['-e', "require('net').createServer().listen(0, '127.0.0.1', function () { console.log(this.address().port) })"], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const port = await new Promise<number>((resolve) => child.stdout.once('data', (d) => resolve(Number(String(d).trim()))));
    const result = spawnSync(process.execPath, ['scripts/free-port.js', String(port)], { cwd: root, encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain(`port ${port}: stopped pid ${child.pid}`);
    await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve)));
    expect(await portAnswers(port)).toBe(false);
    const again = spawnSync(process.execPath, ['scripts/free-port.js', String(port)], { cwd: root, encoding: 'utf8' });
    expect(again.stdout).toContain(`port ${port}: already free`);
  });

  it('refuses a non-numeric port with one clear line and exit 1', () => {
    const result = spawnSync(process.execPath, ['scripts/free-port.js', 'abc'], { cwd: root, encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe("free-port: 'abc' is not a port number (1-65535)");
  });
});

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}
