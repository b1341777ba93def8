/**
 * factorstream's public API: the pure domain (domain/index.ts) and the engine that drives it
 * through the ports (app/engine.ts).
 */
export * from '../domain/index.ts';
export * from './engine.ts';
