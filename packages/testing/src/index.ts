export * from './postgres.js';
export * from './kafka.js';
export * from './wait.js';
