export * from './postgres.js';
export * from './kafka.js';
